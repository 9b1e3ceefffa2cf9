"""Shared core of the BoltIT ticket-model registry.

Settings, the project database (ticket store, audit history, feature flags,
incidents), MLflow wiring and the root CLI live here; ``training``,
``registry``, ``serving``, ``data_checks`` and ``monitoring`` build on it and
never on each other in a circle.
"""
