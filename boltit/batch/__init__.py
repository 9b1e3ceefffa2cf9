"""Batch scoring: ``boltit score`` on pandas (local) or Spark, resumable, logged and audited."""
