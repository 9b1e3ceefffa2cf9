"""The composition root: the `boltit` command, the demo and the service wiring."""
