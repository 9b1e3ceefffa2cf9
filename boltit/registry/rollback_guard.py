"""Guards on a rollback target: a version known to be bad does not come back by accident.

A target is guarded when it failed its gates (tag ``validation_status=failed``), or when an
incident that is open, or was opened or closed within ``settings.rollback_guard_days``,
marked it regressed or rolled back from it. Incidents are read from the core tables
(``Incident`` and the ``incident_action`` audit rows the monitor writes): the registry does
not import ``monitoring``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlflow import MlflowClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from boltit.core import audit
from boltit.core.schema import Incident, utcnow
from boltit.core.vocabulary import TAG_VALIDATION_STATUS
from boltit.registry.lookup import registry_errors

FAILED_GATES = "failed_gates"
INCIDENT = "incident"
# ``boltit.monitoring.incidents.RESOLVED``: every other status (open, mitigated) is still active.
_RESOLVED = "resolved"
# ``incident_action`` steps the monitor records (``details.step``).
_MARK_REGRESSED = "mark_regressed"
_ROLLBACK = "rollback"


@dataclass(frozen=True)
class Guard:
    """One reason a version should not serve again without ``--force --reason``."""

    name: str  # ``failed_gates`` or ``incident``
    message: str
    incident: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"guard": self.name, "message": self.message, "incident": self.incident}


def version_guards(
    session: Session, client: MlflowClient, *, name: str, version: str, recent_days: float
) -> list[Guard]:
    """Every guard on putting ``version`` back in Production (rollback and sync alike)."""
    with registry_errors(f"cannot read version {version} of {name!r}"):
        tags = dict(client.get_model_version(name, version).tags or {})
    gates = failed_gates(tags, version=version)
    incidents = incident_guards(
        session, model_name=name, version=version, now=utcnow(), recent_days=recent_days
    )
    return ([gates] if gates else []) + incidents


def failed_gates(tags: dict[str, str], *, version: str) -> Guard | None:
    """The gates guard: the version's last validation failed."""
    if tags.get(TAG_VALIDATION_STATUS) != "failed":
        return None
    gates = sorted(
        key.removeprefix("gate.")
        for key, value in tags.items()
        if key.startswith("gate.") and str(value).startswith("failed")
    )
    which = f" ({', '.join(gates)})" if gates else ""
    return Guard(FAILED_GATES, f"v{version} failed its gates{which}")


@dataclass
class _Finding:
    steps: set[str] = field(default_factory=set)
    last_seen: datetime | None = None  # the newest audit row about it, if any


def incident_guards(
    session: Session, *, model_name: str, version: str, now: datetime, recent_days: float
) -> list[Guard]:
    """Incidents, open or recent, that marked ``version`` regressed or rolled back from it."""
    findings: dict[int, _Finding] = {}
    query = select(Incident).where(Incident.model_name == model_name).order_by(Incident.id)
    incidents = {incident.id: incident for incident in session.scalars(query)}
    for incident in incidents.values():
        details = incident.details or {}
        if str(details.get("regressed_version")) == version:
            findings.setdefault(incident.id, _Finding()).steps.add(_MARK_REGRESSED)
        rolled_to = details.get("rolled_back_to")
        if incident.model_version == version and rolled_to and str(rolled_to) != version:
            findings.setdefault(incident.id, _Finding()).steps.add(_ROLLBACK)
    for event in audit.history(session, model_name=model_name, actions=["incident_action"]):
        details = event.details or {}
        step = details.get("step")
        about = (step == _MARK_REGRESSED and str(details.get("regressed_version")) == version) or (
            step == _ROLLBACK and str(details.get("from")) == version
        )
        if not about or not isinstance(details.get("incident"), int):
            continue
        finding = findings.setdefault(details["incident"], _Finding())
        finding.steps.add(str(step))
        finding.last_seen = event.at

    cutoff = now - timedelta(days=recent_days)
    guards = []
    for number, finding in sorted(findings.items()):
        found = incidents.get(number)
        if found is not None:
            latest = found.closed_at or found.opened_at
            if found.status != _RESOLVED:
                state = found.status
            elif latest >= cutoff:
                state = f"resolved {_ago(now - latest)} ago"
            else:
                continue
        elif finding.last_seen is not None and finding.last_seen >= cutoff:
            state = f"recorded {_ago(now - finding.last_seen)} ago"
        else:
            continue
        did = " and ".join(
            text
            for step, text in (
                (_MARK_REGRESSED, f"marked v{version} regressed"),
                (_ROLLBACK, f"rolled back from v{version}"),
            )
            if step in finding.steps
        )
        guards.append(Guard(INCIDENT, f"incident #{number} ({state}) {did}", incident=number))
    return guards


def _ago(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"
