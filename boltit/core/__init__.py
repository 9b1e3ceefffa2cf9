"""The floor: settings, the project database, audit, flags, clients and the shared contracts.

It imports nothing of the project above it."""
