"""Which registered version ``--model Production|challenger|VERSION`` names, fixed once.

An alias is resolved to its version number before anything is scored: the alias may move
while a long run goes on, and the manifest, the MLflow run and the audit event must all
name the version that actually answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient

from boltit.core.errors import NotFoundError
from boltit.registry.lookup import aliases, get_version


@dataclass(frozen=True)
class ScoringVersion:
    """A registered version, how it was asked for, and its pyfunc URI."""

    name: str
    version: str
    asked_as: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def label(self) -> str:
        shown = f"v{self.version}"
        return shown if self.asked_as == self.version else f"{shown} (@{self.asked_as})"


def resolve_version(client: MlflowClient, *, name: str, ref: str) -> ScoringVersion:
    """The version ``ref`` (a number or an alias) names.

    Raises:
        NotFoundError: no such model, version or alias (the message lists the aliases).
    """
    text = ref.strip()
    if text.isdigit():
        get_version(client, name=name, version=text)
        return ScoringVersion(name=name, version=text, asked_as=text)
    known = aliases(client, name=name)
    if text not in known:
        listed = ", ".join(f"{a} -> v{v}" for a, v in sorted(known.items())) or "none"
        raise NotFoundError(f"model {name!r} has no alias {text!r} (its aliases: {listed})")
    return ScoringVersion(name=name, version=known[text], asked_as=text)
