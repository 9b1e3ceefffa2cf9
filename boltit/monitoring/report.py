"""The post-incident review (runbook step 10), pre-filled from the timeline and the figures."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from boltit.monitoring import incidents
from boltit.monitoring.incidents import EventView, IncidentView


def duration(view: IncidentView) -> timedelta:
    """Opened to closed, or to the last timeline entry while the incident is still active."""
    end = view.closed_at or (view.events[-1].at if view.events else view.opened_at)
    return end - view.opened_at


def render_review(view: IncidentView) -> str:
    """Markdown in the runbook's PIR structure."""
    details = view.details
    lines = [
        f"## Post-Incident Review: Model Regression {view.opened_at:%Y-%m-%d}",
        "",
        f"**Incident:** #{view.id} ({view.severity}, {view.status}): {view.title}",
        f"**Date:** {view.opened_at:%Y-%m-%d %H:%M:%S} UTC",
        f"**Duration:** {_span(duration(view))}"
        + ("" if view.closed_at else f" so far (status: {view.status})"),
        f"**Impact:** {_impact(details.get('impact') or {})}",
        f"**Root Cause:** {_root_cause(view)}",
        "",
        "**Timeline:**",
    ]
    lines += [f"- {event.at:%H:%M:%S}: {_kind(event)}: {event.message}" for event in view.events]
    lines += ["", "**Action Items:**"]
    lines += [f"{n}. [ ] {item}" for n, item in enumerate(_action_items(view), start=1)]
    lines += ["", "**What Went Well:**"]
    lines += [f"- {item}" for item in _went_well(view)] or ["- (to be filled in at the review)"]
    lines += ["", "**What Can Improve:**"]
    lines += [f"- {item}" for item in _can_improve(view)] or ["- (to be filled in at the review)"]
    return "\n".join(lines) + "\n"


_KIND_LABELS = {
    incidents.ALERT: "Alert triggered",
    incidents.AUTO_APPLY_DISABLED: "Auto-apply disabled",
    incidents.HINT: "Root-cause hint",
    incidents.ROLLBACK: "Rollback",
    incidents.ROLLBACK_SKIPPED: "Rollback not done",
    incidents.VERIFICATION: "Mitigation check",
    incidents.STATUS_CHANGE: "Status",
    incidents.NOTE: "Note",
}


def _kind(event: EventView) -> str:
    return _KIND_LABELS.get(event.kind, event.kind)


def _span(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


def _impact(impact: dict[str, Any]) -> str:
    if not impact.get("version"):
        return "unknown (no Production version was recorded)"
    parts = [f"v{impact['version']} served {impact.get('tickets', 0)} tickets"]
    if impact.get("promoted_at"):
        parts[0] += f" since it went live at {_time(impact['promoted_at'])}"
    accuracy = impact.get("accuracy")
    if accuracy is not None:
        text = f"{impact.get('labelled', 0)} with feedback, accuracy {accuracy:.1%}"
        if impact.get("accuracy_before") is not None:
            text += f" (before it went live: {impact['accuracy_before']:.1%})"
        parts.append(text)
    auto = int(impact.get("auto_applied") or 0)
    if auto:
        wrong = (
            f", about {round(auto * (1 - accuracy))} of them wrong" if accuracy is not None else ""
        )
        parts.append(f"{auto} categories auto-applied{wrong}")
    else:
        parts.append("no category was auto-applied")
    return "; ".join(parts) + "."


def _time(value: str) -> str:
    try:
        return f"{datetime.fromisoformat(value):%Y-%m-%d %H:%M:%S} UTC"
    except ValueError:
        return value


def _hints(view: IncidentView) -> list[EventView]:
    return [e for e in view.events if e.kind == incidents.HINT]


def _root_cause(view: IncidentView) -> str:
    hints = _hints(view)
    promotion = next((e for e in hints if "went live" in e.message), None)
    if promotion is not None and view.details.get("rolled_back_to"):
        return (
            f"Recent model deployment (to be confirmed at the review): {promotion.message}. "
            "The regression started after it; rolling back to "
            f"v{view.details['rolled_back_to']} was the mitigation."
        )
    if promotion is not None:
        return f"To be confirmed. Leading suspect: {promotion.message}."
    return "To be confirmed at the review; see the root-cause hints in the timeline."


def _action_items(view: IncidentView) -> list[str]:
    items: list[str] = []
    version = view.details.get("regressed_version") or view.model_version
    promotion = next(
        (e for e in _hints(view) if e.details.get("to_version") == view.model_version), None
    )
    if promotion is not None and promotion.details.get("forced"):
        items.append(
            f"Review why v{version} was promoted with --force past the validation gates "
            f"(by {promotion.details.get('actor')})"
        )
    items.append(
        f"Find why v{version} underperforms (training data, labels, code) before retrying it"
    )
    items.append("Update model validation thresholds so a version like this fails its gates")
    if any(e.kind == incidents.AUTO_APPLY_DISABLED for e in view.events):
        items.append(
            "Decide when to re-enable auto-apply once accuracy is restored "
            "(`boltit flags set auto-apply on --reason ...`; a human decision)"
        )
    if any(e.kind == incidents.ROLLBACK_SKIPPED for e in view.events):
        items.append("Choose the version to serve: the monitor did not roll back (see timeline)")
    items.append("Document the new failure mode in the runbook")
    return items


def _went_well(view: IncidentView) -> list[str]:
    items: list[str] = []
    detection = view.details.get("detection") or {}
    alarm_at = detection.get("sequential_alarm_at")
    if alarm_at:
        items.append(
            f"Quick detection: the sequential test alarmed after {alarm_at} labelled tickets "
            f"(baseline {detection.get('baseline', 0):.1%}, {detection.get('baseline_source')})"
        )
    disabled = next((e for e in view.events if e.kind == incidents.AUTO_APPLY_DISABLED), None)
    if disabled is not None:
        items.append(
            f"Auto-apply disabled {_span(disabled.at - view.opened_at)} after the alert, "
            "before any other step"
        )
    verified = next(
        (e for e in view.events if e.kind == incidents.VERIFICATION and e.details.get("ok")), None
    )
    if verified is not None:
        items.append(
            f"Fast mitigation: rollback verified {_span(verified.at - view.opened_at)} after the "
            "alert, without restarting the service"
        )
    return items


def _can_improve(view: IncidentView) -> list[str]:
    items: list[str] = []
    impact = view.details.get("impact") or {}
    if impact.get("auto_applied"):
        items.append(
            f"{impact['auto_applied']} categories were auto-applied before detection: "
            "shadow or gradual rollout of new versions would catch this earlier"
        )
    if any(e.kind == incidents.ROLLBACK_SKIPPED for e in view.events):
        items.append("The monitor could not mitigate on its own; see why in the timeline")
    if any(e.kind == incidents.VERIFICATION and not e.details.get("ok") for e in view.events):
        items.append("The rollback was not verified on the service in time")
    promotion = next((e for e in _hints(view) if e.details.get("forced")), None)
    if promotion is not None:
        items.append("A forced promotion bypassed the gates that would have refused this version")
    return items
