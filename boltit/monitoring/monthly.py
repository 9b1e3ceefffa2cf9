"""The monthly model-performance report: per serving version, from the ticket store and the
audit history (runbook "Prevention": a monthly review of model performance). This module
gathers the figures and renders Markdown; ``monthly_html`` renders the same report as HTML.

Every figure is the monitor's own (``boltit.core.evaluation``): accuracy is ``live_accuracy``
(authenticated labels only), calibration is ``expected_calibration_error``; the drift summary
is ``detect_drift`` of the month's tickets against the month before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from boltit.core import audit
from boltit.core.errors import BadInputError
from boltit.core.evaluation import (
    category_recall,
    expected_calibration_error,
    feedback_outcomes,
    live_accuracy,
)
from boltit.core.schema import AuditEvent, Incident, Ticket
from boltit.data_checks.drift import DriftConfig, DriftReport, detect_drift
from boltit.data_checks.ticket_frames import prediction_log
from boltit.registry.behaviour.share import Share
from boltit.registry.history import REGISTRY_ACTIONS

# Actions of the audit history that changed (or refused to change) what serves.
_SERVING_ACTIONS = [a for a in REGISTRY_ACTIONS if a != "validate"]
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Month:
    """A calendar month in UTC, ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m}"

    def before(self) -> Month:
        """The calendar month before this one."""
        return parse_month(f"{self.start - timedelta(days=1):%Y-%m}")


def parse_month(text: str | None, *, today: date | None = None) -> Month:
    """``YYYY-MM``; None: the last complete month before ``today``.

    Raises:
        BadInputError: not a ``YYYY-MM`` month.
    """
    if text is None:
        today = today or datetime.now(UTC).date()
        year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    else:
        try:
            first = datetime.strptime(text.strip(), "%Y-%m")
        except ValueError as exc:
            raise BadInputError(f"--month {text!r}: expected YYYY-MM, e.g. 2026-11") from exc
        year, month = first.year, first.month
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if month == 12 else start.replace(month=month + 1)
    return Month(start, end)


@dataclass(frozen=True)
class VersionMonth:
    """One version's month: volume, auto-apply, labelled accuracy and calibration."""

    version: str
    tickets: int
    auto_applied: int
    labelled: int
    correct: int
    ece: float | None
    category_accuracy: dict[str, tuple[int, float]]  # label -> (labelled tickets, recall)
    # Auto-applied tickets that got a label, and how many of those the model had right.
    auto_applied_labelled: int = 0
    auto_applied_correct: int = 0
    # Per UTC day with labels: (day, labelled, correct), for the accuracy-over-time plot.
    daily: list[tuple[date, int, int]] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list, repr=False)

    @property
    def auto_applied_precision(self) -> float | None:
        """Share right among labelled auto-applied tickets (the runbook's auto-apply risk)."""
        if not self.auto_applied_labelled:
            return None
        return self.auto_applied_correct / self.auto_applied_labelled

    @property
    def auto_applied_share(self) -> float:
        return self.auto_applied / self.tickets if self.tickets else 0.0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def accuracy_interval(self) -> tuple[float, float] | None:
        """Wilson interval of the accuracy (errors as the share, then flipped)."""
        interval = Share(self.labelled - self.correct, self.labelled, CONFIDENCE).interval
        return None if interval is None else (1.0 - interval[1], 1.0 - interval[0])


@dataclass(frozen=True)
class MonthlyReport:
    model_name: str
    month: Month
    versions: list[VersionMonth]
    incidents_opened: list[Incident]
    incidents_resolved: list[Incident]
    changes: list[AuditEvent]
    # Against the month before; None when either month has no tickets.
    drift: DriftReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "month": self.month.label,
            "versions": [
                {
                    "version": v.version,
                    "tickets": v.tickets,
                    "auto_applied_share": v.auto_applied_share,
                    "auto_applied_precision": v.auto_applied_precision,
                    "labelled": v.labelled,
                    "accuracy": v.accuracy,
                    "accuracy_interval": v.accuracy_interval,
                    "ece": v.ece,
                    "category_accuracy": v.category_accuracy,
                }
                for v in self.versions
            ],
            "incidents_opened": [i.id for i in self.incidents_opened],
            "incidents_resolved": [i.id for i in self.incidents_resolved],
            "changes": [(e.action, e.from_version, e.to_version) for e in self.changes],
            "drift": None if self.drift is None else self.drift.to_dict(),
        }


def monthly_report(
    session: Session, *, model_name: str, month: Month, drift_config: DriftConfig | None = None
) -> MonthlyReport:
    """Everything the report says about ``month``, read in one session.

    ``drift_config``: the thresholds of the drift summary (the packaged ones when None).
    """
    rows = session.execute(
        select(
            Ticket.model_version,
            Ticket.category,
            Ticket.confidence,
            Ticket.auto_applied,
            Ticket.feedback_category,
            Ticket.feedback_client,
            Ticket.created_at,
        )
        .where(Ticket.model_name == model_name)
        .where(Ticket.created_at >= month.start)
        .where(Ticket.created_at < month.end)
    ).all()
    accuracy = live_accuracy(session, since=month.start, until=month.end)
    versions = []
    for version in sorted({str(r[0]) for r in rows}, key=_version_key):
        mine = [r for r in rows if str(r[0]) == version]
        by_route = [a for (v, _), a in accuracy.by_route.items() if v == version]
        # The same rule as live_accuracy: only an authenticated label is ground truth.
        labels = [r[4] if r[5] is not None else None for r in mine]
        predicted = np.array([r[1] for r in mine], dtype=object)
        labelled, right = feedback_outcomes(predicted, labels)
        truth = np.array(labels, dtype=object)[labelled]
        recall = category_recall(truth, predicted[labelled]) if labelled.any() else {}
        support = {c: int((truth == c).sum()) for c in recall}
        every_confidence = np.array([r[2] for r in mine], dtype=float)
        confidence = every_confidence[labelled]
        applied = np.array([bool(r[3]) for r in mine], dtype=bool)
        days = np.array([_utc(r[6]).date() for r in mine], dtype=object)
        versions.append(
            VersionMonth(
                version=version,
                tickets=len(mine),
                auto_applied=sum(bool(r[3]) for r in mine),
                labelled=sum(a.labelled for a in by_route),
                correct=sum(a.correct for a in by_route),
                ece=(
                    expected_calibration_error(confidence=confidence, correct=right[labelled])
                    if labelled.any()
                    else None
                ),
                category_accuracy={c: (support[c], recall[c]) for c in sorted(recall)},
                auto_applied_labelled=int((applied & labelled).sum()),
                auto_applied_correct=int((applied & right).sum()),
                daily=[
                    (day, int(labelled[days == day].sum()), int(right[days == day].sum()))
                    for day in sorted(set(days[labelled]))
                ],
                confidences=every_confidence.tolist(),
            )
        )
    incidents = list(
        session.scalars(
            select(Incident).where(Incident.model_name == model_name).order_by(Incident.id)
        )
    )
    changes = [
        e
        for e in audit.history(
            session, model_name=model_name, actions=_SERVING_ACTIONS, since=month.start
        )
        if e.at < month.end
    ]
    return MonthlyReport(
        model_name=model_name,
        month=month,
        versions=versions,
        incidents_opened=[i for i in incidents if month.start <= i.opened_at < month.end],
        incidents_resolved=[
            i
            for i in incidents
            if i.closed_at is not None and month.start <= i.closed_at < month.end
        ],
        changes=changes,
        drift=_month_drift(session, month, drift_config),
    )


def _month_drift(session: Session, month: Month, config: DriftConfig | None) -> DriftReport | None:
    """The month's tickets against the month before's, by the ``drift`` command's signals."""
    previous = month.before()
    baseline = prediction_log(session, since=previous.start, until=previous.end)
    current = prediction_log(session, since=month.start, until=month.end)
    if baseline.empty or current.empty:
        return None
    return detect_drift(
        baseline, current, config=config, baseline_label=previous.label, current_label=month.label
    )


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the store writes UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (10**9, version)


def render_markdown(report: MonthlyReport) -> str:
    """The report as Markdown, one section per subject."""
    lines = [
        f"# Model performance: {report.model_name}, {report.month.label}",
        "",
        f"Tickets created {report.month.start:%Y-%m-%d} to {report.month.end:%Y-%m-%d} "
        "(UTC, end excluded). Accuracy counts authenticated agent labels only; intervals are "
        f"{CONFIDENCE:.0%} Wilson.",
        "",
        "## Versions that served",
        "",
    ]
    if not report.versions:
        lines.append("No tickets this month.")
    else:
        lines += [
            "| version | tickets | auto-applied | labelled | accuracy | 95% CI | ECE |",
            "|---|---:|---:|---:|---:|---|---:|",
        ]
        for v in report.versions:
            ci = v.accuracy_interval
            lines.append(
                f"| v{v.version} | {v.tickets:,} | {v.auto_applied_share:.1%} | {v.labelled:,} "
                f"| {_figure(v.accuracy)} | {f'{ci[0]:.3f} to {ci[1]:.3f}' if ci else '-'} "
                f"| {_figure(v.ece)} |"
            )
    lines += ["", "## Accuracy by category (labelled tickets, by the agent's category)", ""]
    labelled = [v for v in report.versions if v.category_accuracy]
    if not labelled:
        lines.append("No labelled tickets this month.")
    for v in labelled:
        lines += [f"### v{v.version}", "", "| category | labelled | accuracy |", "|---|---:|---:|"]
        lines += [f"| {c} | {n:,} | {acc:.3f} |" for c, (n, acc) in v.category_accuracy.items()]
        lines.append("")
    lines += ["", "## Drift", ""]
    if report.drift is None:
        lines.append("No comparison: this month or the month before has no tickets.")
    else:
        lines += [
            f"Against {report.drift.baseline_label} ({report.drift.baseline_rows:,} tickets): "
            f"**{report.drift.verdict.value}**.",
            "",
        ]
        lines += [f"- {s.signal}: {s.verdict.value}; {s.summary}" for s in report.drift.signals]
    lines += ["", "## Incidents", ""]
    lines.append(
        f"Opened: {len(report.incidents_opened)}; resolved: {len(report.incidents_resolved)}."
    )
    shown = {i.id: i for i in [*report.incidents_opened, *report.incidents_resolved]}
    for incident in shown.values():
        closed = f", resolved {incident.closed_at:%Y-%m-%d}" if incident.closed_at else ""
        lines.append(
            f"- #{incident.id} ({incident.severity}, {incident.status}) v{incident.model_version}: "
            f"{incident.title}; opened {incident.opened_at:%Y-%m-%d}{closed}"
        )
    lines += ["", "## Promotions and rollbacks", ""]
    if not report.changes:
        lines.append("None this month.")
    for event in report.changes:
        outcome = (event.details or {}).get("outcome")
        lines.append(
            f"- {event.at:%Y-%m-%d %H:%M} {event.action}: v{event.from_version or '-'} -> "
            f"v{event.to_version or '-'} by {event.actor}"
            + (f" ({outcome})" if outcome else "")
            + (" [forced]" if event.forced else "")
            + (f": {event.reason}" if event.reason else "")
        )
    return "\n".join(lines) + "\n"


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
