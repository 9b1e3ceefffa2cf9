"""The runbook, automated: disable auto-apply first, then roll back when the evidence says so.

Every step is committed on its own, so the incident timeline shows how far the response got
even if a later step fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from boltit.core import audit, flags
from boltit.core.db import Database
from boltit.core.errors import BoltitError
from boltit.core.model_contract import ServedVersion
from boltit.core.polling import wait_until
from boltit.core.schema import Incident
from boltit.core.settings import Settings
from boltit.core.vocabulary import AUTO_APPLY_FLAG, PRODUCTION
from boltit.monitoring import incidents, rules
from boltit.monitoring.hints import root_cause_hints
from boltit.monitoring.notify import IncidentRef, Notifier
from boltit.monitoring.status import MonitorStatus

MONITOR_ACTOR = "monitor"


@dataclass(frozen=True)
class RollbackDecision:
    """Whether to roll back, to which version, and why (the why goes on the timeline)."""

    rollback: bool
    reason: str
    target: str | None = None
    regressed: bool = False
    """True when the evidence says Production itself regressed since its promotion."""


@dataclass
class Response:
    """What one monitoring pass did."""

    incident_id: int | None = None
    opened: bool = False
    auto_apply_disabled: bool = False
    rolled_back_to: str | None = None
    verified: bool | None = None
    smoke_ok: bool | None = None
    """The smoke test after a rollback (None when it did not run: no service URL)."""
    decision: RollbackDecision | None = None
    notes: list[str] = field(default_factory=list)


def decide_rollback(status: MonitorStatus) -> RollbackDecision:
    """Apply the runbook's step 5 condition to the current status.

    Roll back only when the regression started after the latest promotion of the current
    Production version and ``previous`` performed better, and never into a version that has
    already regressed.
    """
    production, previous = status.production, status.previous
    if production is None:
        return RollbackDecision(False, "no Production version is set")
    regressed, evidence = _regressed_since_promotion(status)
    if not regressed:
        return RollbackDecision(False, f"no evidence that v{production} regressed: {evidence}")
    if previous is None or previous == production:
        return RollbackDecision(
            False,
            f"v{production} regressed ({evidence}) but there is no previous version",
            None,
            True,
        )
    if previous in status.regressed_versions:
        return RollbackDecision(
            False,
            f"previous v{previous} already regressed in an earlier incident; not rolling back "
            "into it (a human must pick a version)",
            None,
            True,
        )
    previous_accuracy, previous_source = _previous_accuracy(status)
    current_accuracy = status.post_promotion_accuracy
    if previous_accuracy is None or current_accuracy is None:
        return RollbackDecision(
            False,
            f"v{production} regressed ({evidence}) but previous v{previous} has no figures",
            None,
            True,
        )
    if previous_accuracy <= current_accuracy:
        return RollbackDecision(
            False,
            f"previous v{previous} ({previous_source} {previous_accuracy:.3f}) did not perform "
            f"better than v{production} ({current_accuracy:.3f})",
            None,
            True,
        )
    return RollbackDecision(
        True,
        f"v{production} regressed after its promotion ({evidence}); previous v{previous} "
        f"performed better ({previous_source} {previous_accuracy:.3f} vs {current_accuracy:.3f})",
        previous,
        True,
    )


def _regressed_since_promotion(status: MonitorStatus) -> tuple[bool, str]:
    """Did Production do worse than it proved since it went live? With the evidence, and how
    sure it is (statistic, threshold, labelled tickets)."""
    if status.promoted_at is None:
        return False, "the history records no promotion of the current version"
    proven = status.proven
    if proven is None:
        return False, (
            f"v{status.production} has no proven accuracy, so a regression relative to it "
            "cannot be established"
        )
    sequential = status.sequential
    if sequential is not None and sequential.alarm:
        return True, (
            f"sequential test alarmed after {sequential.alarm_at} labelled tickets "
            f"(statistic {sequential.peak:.2f} >= {sequential.threshold:g}), live accuracy "
            f"{sequential.accuracy:.3f} over {sequential.observations} labelled vs H0 "
            f"{sequential.baseline:.3f} ({proven.describe()})"
        )
    comparison = status.comparison
    minimum = _floor_min_samples(status)
    if comparison is not None and comparison.below and comparison.live.labelled >= minimum:
        return True, f"below what it proved: {comparison.describe()} < {comparison.alpha:g}"
    floor = _unaccepted_under_floor(status)
    if floor is not None:
        return True, floor
    if sequential is not None:
        return False, (
            f"performs as it proved: sequential statistic {sequential.statistic:.2f} < "
            f"{sequential.threshold:g} over {sequential.observations} labelled tickets "
            f"since it went live (live {_fmt(sequential.accuracy)}, {proven.describe()})"
        )
    return False, "no labelled tickets since it went live"


def _unaccepted_under_floor(status: MonitorStatus) -> str | None:
    """A version that never passed its gates is held to the runbook's floor as written: its
    accuracy since it went live significantly below the floor counts as a regression."""
    figures = status.figures
    if figures is None or figures.accepted or status.comparison is None:
        return None
    for rule in status.config.rules:
        if rule.incident != rules.BELOW_PROVEN:
            continue
        floor = rules.ProvenAccuracy(figures.version, rule.critical, None, "the runbook's floor")
        test = rules.compare_with_proven(
            status.comparison.live, floor, confidence=0.5, alpha=rule.alpha
        )
        if test.below and test.live.labelled >= rule.min_samples:
            return (
                f"v{figures.version} never passed its gates (validation_status="
                f"{figures.validation_status or 'never validated'}) and is below the runbook's "
                f"floor {rule.critical:g} since it went live: live {test.live.accuracy or 0:.3f} "
                f"over {test.live.labelled} labelled, one-sided binomial p = "
                f"{test.p_value:.3g} < {rule.alpha:g}"
            )
    return None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _floor_min_samples(status: MonitorStatus) -> int:
    for rule in status.config.rules:
        if rule.incident == rules.BELOW_PROVEN:
            return rule.min_samples
    return 1


def _previous_accuracy(status: MonitorStatus) -> tuple[float | None, str]:
    figures = status.previous_figures
    if figures is None:
        return None, ""
    if figures.live_accuracy is not None and figures.live_labelled >= 50:
        return figures.live_accuracy, f"live accuracy over {figures.live_labelled} labelled"
    if figures.proven is not None:
        return figures.proven.accuracy, "proven accuracy"
    return None, ""


def respond(
    *,
    settings: Settings,
    database: Database,
    client: MlflowClient,
    status: MonitorStatus,
    actor: str = MONITOR_ACTOR,
    service_url: str | None = None,
    verify_timeout: float = 30.0,
) -> Response:
    """Act on critical verdicts that open an incident, following the runbook's order.

    Report-only verdicts (e.g. the accuracy floor for a model performing as it proved) never
    open an incident, turn auto-apply off or roll back.

    Args:
        settings: Settings of this process.
        database: Project database (incidents, audit, flags).
        client: MLflow client for the registry.
        status: The current monitoring status.
        actor: Recorded as the one who acted.
        service_url: When given, the rollback is verified against the running service's
            ``/model/version`` as well as the registry alias.
        verify_timeout: Seconds to wait for the service to report the rolled-back version.
    """
    response = Response()
    critical = status.incident_alerts()
    if not critical:
        return response
    active = _active_incident(database, status)
    if active is not None:
        # One incident per regressed version: repeated passes add nothing and never re-act.
        response.incident_id = active
        response.notes.append(f"incident #{active} already covers v{status.production}")
        return response
    incident_id = _open_incident(database, status=status, critical=critical, actor=actor)
    response.incident_id, response.opened = incident_id, True
    # Runbook step 1: page. Deliveries run beside the actions below and never hold them up;
    # leaving the block waits for them (bounded) and records each on the timeline.
    with Notifier(settings=settings, database=database) as notifier:
        ref = _incident_ref(database, incident_id)
        notifier.tell(ref, "open", "; ".join(e.describe() for e in critical))
        _respond_to_incident(
            response,
            notifier=notifier,
            ref=ref,
            settings=settings,
            database=database,
            client=client,
            status=status,
            critical=critical,
            actor=actor,
            service_url=service_url,
            verify_timeout=verify_timeout,
        )
    return response


def _respond_to_incident(
    response: Response,
    *,
    notifier: Notifier,
    ref: IncidentRef,
    settings: Settings,
    database: Database,
    client: MlflowClient,
    status: MonitorStatus,
    critical: list[rules.Evaluation],
    actor: str,
    service_url: str | None,
    verify_timeout: float,
) -> None:
    """Runbook steps 3 to 7 on an incident just opened, each told to the channels."""
    incident_id = ref.id
    # Runbook step 3 comes first: stop wrong categories being applied automatically.
    _disable_auto_apply(
        settings=settings,
        database=database,
        incident_id=incident_id,
        critical=critical,
        actor=actor,
    )
    response.auto_apply_disabled = True
    notifier.tell(ref, "action", "auto-apply disabled")
    # Runbook step 4: root-cause hints, recorded before any decision is taken on them.
    _record_hints(settings=settings, database=database, status=status, incident_id=incident_id)
    # Runbook step 5.
    decision = decide_rollback(status)
    response.decision = decision
    _record_decision(
        database=database, status=status, incident_id=incident_id, decision=decision, actor=actor
    )
    if not decision.rollback:
        notifier.tell(ref, "action", f"no automatic rollback: {decision.reason}")
        return
    try:
        _roll_back_and_verify(
            response,
            settings=settings,
            database=database,
            client=client,
            status=status,
            incident_id=incident_id,
            decision=decision,
            actor=actor,
            service_url=service_url,
            verify_timeout=verify_timeout,
        )
    except Exception as exc:
        notifier.tell(ref, "action", f"rollback to v{decision.target} failed: {exc}")
        raise
    moved = f"rolled back from v{status.production} to v{decision.target}"
    if response.verified:
        notifier.tell(ref, "mitigated", f"{moved}; verified, v{decision.target} serves")
    else:
        notifier.tell(ref, "action", f"{moved}; NOT verified")
    if response.smoke_ok is not None:
        verdict = "passed" if response.smoke_ok else "FAILED"
        notifier.tell(ref, "action", f"smoke test after the rollback {verdict}")


def _incident_ref(database: Database, incident_id: int) -> IncidentRef:
    with database.session() as session:
        return IncidentRef.of(_incident(session, incident_id))


def _roll_back_and_verify(
    response: Response,
    *,
    settings: Settings,
    database: Database,
    client: MlflowClient,
    status: MonitorStatus,
    incident_id: int,
    decision: RollbackDecision,
    actor: str,
    service_url: str | None,
    verify_timeout: float,
) -> None:
    """Move Production back to the decided version, then confirm it serves; both on ``response``."""
    assert decision.target is not None
    _roll_back(
        settings=settings,
        database=database,
        client=client,
        status=status,
        incident_id=incident_id,
        decision=decision,
        actor=actor,
    )
    response.rolled_back_to = decision.target
    response.verified = _verify(
        database=database,
        client=client,
        name=status.model_name,
        incident_id=incident_id,
        version=decision.target,
        service_url=service_url,
        timeout=verify_timeout,
        actor=actor,
    )
    if service_url:
        # Runbook step 7: the smoke tests, against the version rolled back to, auto-apply off.
        response.smoke_ok = _smoke(
            settings=settings,
            database=database,
            client=client,
            incident_id=incident_id,
            version=decision.target,
            service_url=service_url,
        )


def _active_incident(database: Database, status: MonitorStatus) -> int | None:
    """The open incident that already covers Production since its promotion, if any."""
    with database.session() as session:
        active = incidents.active_incident(
            session,
            model_name=status.model_name,
            model_version=status.production,
            since=status.promoted_at,
        )
        return active.id if active is not None else None


def _open_incident(
    database: Database, *, status: MonitorStatus, critical: list[rules.Evaluation], actor: str
) -> int:
    """Open the incident with the alerts, impact and detection figures on its timeline."""
    name = status.model_name
    with database.session() as session:
        incident = incidents.open_incident(
            session,
            title=f"Model regression: {name} v{status.production}: "
            + ", ".join(e.label for e in critical),
            model_name=name,
            model_version=status.production,
            actor=actor,
            details={
                "alerts": [e.describe() for e in critical],
                "previous": status.previous,
                "impact": impact_figures(status),
                "detection": detection_figures(status),
            },
        )
        for evaluation in critical:
            incidents.add_event(
                session,
                incident,
                kind=incidents.ALERT,
                message=evaluation.describe(),
                details={"rule": evaluation.label, "value": evaluation.value},
            )
        return incident.id


def _disable_auto_apply(
    *,
    settings: Settings,
    database: Database,
    incident_id: int,
    critical: list[rules.Evaluation],
    actor: str,
) -> None:
    with database.session() as session:
        incident = _incident(session, incident_id)
        was_on = flags.read_flag(session, AUTO_APPLY_FLAG, default=settings.auto_apply_enabled)
        flags.set_flag(
            session,
            AUTO_APPLY_FLAG,
            enabled=False,
            actor=actor,
            reason=f"incident #{incident_id}: " + ", ".join(e.label for e in critical),
        )
        message = "auto-apply disabled" if was_on else "auto-apply was already off; kept off"
        incidents.add_event(session, incident, kind=incidents.AUTO_APPLY_DISABLED, message=message)
        _audit_step(session, incident, actor=actor, step="disable_auto_apply", reason=message)


def _record_hints(
    *, settings: Settings, database: Database, status: MonitorStatus, incident_id: int
) -> None:
    hints = root_cause_hints(settings=settings, database=database, status=status)
    with database.session() as session:
        incident = _incident(session, incident_id)
        for hint in hints:
            incidents.add_event(
                session, incident, kind=incidents.HINT, message=hint.message, details=hint.details
            )
        incidents.update_details(incident, hints=[hint.key for hint in hints])


def _record_decision(
    *,
    database: Database,
    status: MonitorStatus,
    incident_id: int,
    decision: RollbackDecision,
    actor: str,
) -> None:
    """Mark Production regressed when it is, and say why on the timeline when not rolling back."""
    with database.session() as session:
        incident = _incident(session, incident_id)
        if decision.regressed and status.production:
            incidents.update_details(incident, regressed_version=status.production)
            _audit_step(
                session,
                incident,
                actor=actor,
                step="mark_regressed",
                reason=f"v{status.production} regressed",
                extra={"regressed_version": status.production},
            )
        if not decision.rollback:
            incidents.add_event(
                session, incident, kind=incidents.ROLLBACK_SKIPPED, message=decision.reason
            )


def _roll_back(
    *,
    settings: Settings,
    database: Database,
    client: MlflowClient,
    status: MonitorStatus,
    incident_id: int,
    decision: RollbackDecision,
    actor: str,
) -> None:
    from boltit.registry.rollback import rollback

    reason = f"incident #{incident_id}: {decision.reason}"
    try:
        rollback(
            client=client,
            database=database,
            name=status.model_name,
            actor=actor,
            to_version=decision.target,
            reason=reason[:2000],
            settings=settings,
        )
    except Exception as exc:  # recorded whatever failed, then reported to the caller
        with database.session() as session:
            incident = _incident(session, incident_id)
            incidents.add_event(
                session,
                incident,
                kind=incidents.ROLLBACK,
                message=f"rollback to v{decision.target} failed: {exc}",
                details={"ok": False},
            )
        raise
    with database.session() as session:
        incident = _incident(session, incident_id)
        incidents.add_event(
            session,
            incident,
            kind=incidents.ROLLBACK,
            message=f"rolled back {status.model_name} from v{status.production} to "
            f"v{decision.target}: {decision.reason}",
            details={"ok": True, "from": status.production, "to": decision.target},
        )
        incidents.update_details(incident, rolled_back_to=decision.target)
        _audit_step(
            session,
            incident,
            actor=actor,
            step="rollback",
            reason=decision.reason,
            extra={"from": status.production, "to": decision.target},
        )


def _verify(
    *,
    database: Database,
    client: MlflowClient,
    name: str,
    incident_id: int,
    version: str,
    service_url: str | None,
    timeout: float,
    actor: str,
) -> bool:
    checks: list[str] = []
    try:
        alias_version = str(client.get_model_version_by_alias(name, PRODUCTION).version)
    except MlflowException as exc:
        alias_version = f"unreadable ({exc.message})"
    ok = alias_version == version
    checks.append(f"registry alias {PRODUCTION} -> v{alias_version}")
    served: str | None = None
    if service_url:
        served, waited = wait_for_service_version(service_url, version=version, timeout=timeout)
        ok = ok and served == version
        checks.append(
            f"service {service_url} serves v{served} after {waited:.1f} s"
            if served
            else f"service {service_url} did not answer /model/version within {timeout:g} s"
        )
    with database.session() as session:
        incident = _incident(session, incident_id)
        verdict = "verified" if ok else "NOT verified"
        incidents.add_event(
            session,
            incident,
            kind=incidents.VERIFICATION,
            message=f"rollback to v{version} {verdict}: " + "; ".join(checks),
            details={"ok": ok, "alias_version": alias_version, "served_version": served},
        )
        if ok:
            incidents.set_status(
                session,
                incident,
                status=incidents.MITIGATED,
                actor=actor,
                note=f"v{version} serves; auto-apply stays off until a human turns it on",
            )
        _audit_step(
            session,
            incident,
            actor=actor,
            step="verify",
            reason=verdict,
            extra={"ok": ok, "version": version},
        )
    return ok


def _smoke(
    *,
    settings: Settings,
    database: Database,
    client: MlflowClient,
    incident_id: int,
    version: str,
    service_url: str,
) -> bool:
    """Run the smoke test after a rollback and put its table on the timeline."""
    from boltit.monitoring.smoke import SmokeResult, load_smoke_tickets, run_smoke
    from boltit.monitoring.smoke_expect import registry_expectations

    try:
        expect = registry_expectations(
            settings=settings, database=database, client=client, version=version, auto_apply=False
        )
        token = settings.smoke_token.get_secret_value() if settings.smoke_token else None
        result = run_smoke(
            url=service_url, token=token, tickets=load_smoke_tickets(), expect=expect
        )
        summary, ok = result.summary(), result.ok
        checks = [
            {"check": c.name, "outcome": c.outcome, "detail": c.detail} for c in result.checks
        ]
    except Exception as exc:  # the smoke test reports; it must not undo a done rollback
        result, ok, checks = SmokeResult(url=service_url), False, []
        summary = f"could not run: {exc}"
    with database.session() as session:
        incident = _incident(session, incident_id)
        incidents.add_event(
            session,
            incident,
            kind=incidents.SMOKE_TEST,
            message=f"smoke test against {service_url} {'passed' if ok else 'FAILED'}: {summary}",
            details={"ok": ok, "checks": checks},
        )
    return ok


def wait_for_service_version(
    service_url: str, *, version: str, timeout: float, interval: float = 0.25
) -> tuple[str | None, float]:
    """Poll ``/model/version`` until it reports ``version``; (last version seen, seconds waited)."""
    url = service_url.rstrip("/") + "/model/version"
    seen: str | None = None
    with httpx.Client(timeout=5.0) as http:

        def serves_it() -> bool:
            nonlocal seen
            try:
                answer = http.get(url)
                if answer.status_code == 200:
                    seen = ServedVersion.model_validate(answer.json()).version
            except (httpx.HTTPError, ValueError):
                pass  # the service may be busy swapping; keep polling until the deadline
            return seen == version

        waited = wait_until(serves_it, timeout=timeout, interval=interval)
    return seen, timeout if waited is None else waited


def impact_figures(status: MonitorStatus) -> dict[str, Any]:
    """What the regressed version did while it served, for the review's Impact line."""
    return {
        "version": status.production,
        "promoted_at": status.promoted_at.isoformat() if status.promoted_at else None,
        "tickets": status.post_promotion_tickets,
        "labelled": status.post_promotion_labelled,
        "accuracy": status.post_promotion_accuracy,
        "auto_applied": status.post_promotion_auto_applied,
        "accuracy_before": status.pre_promotion_accuracy,
    }


def detection_figures(status: MonitorStatus) -> dict[str, Any]:
    """How the regression was detected, for the review's What-went-well section."""
    sequential = status.sequential
    proven = status.proven
    return {
        "baseline": sequential.baseline if sequential else None,
        "baseline_source": proven.describe() if proven else None,
        "proven_accuracy": proven.accuracy if proven else None,
        "proven_rows": proven.rows if proven else None,
        "sequential_alarm_at": sequential.alarm_at if sequential else None,
        "sequential_statistic": sequential.statistic if sequential else None,
        "sequential_threshold": sequential.threshold if sequential else None,
        "labelled_since_live": status.post_promotion_labelled,
        "accuracy_7d": status.quality.accuracy,
        "detected_at": status.computed_at.isoformat(),
    }


def _incident(session: Any, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:  # pragma: no cover - deleted while the monitor ran
        raise BoltitError(f"incident {incident_id} disappeared during the response")
    return incident


def _audit_step(
    session: Any,
    incident: Incident,
    *,
    actor: str,
    step: str,
    reason: str,
    extra: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        action="incident_action",
        actor=actor,
        model_name=incident.model_name,
        from_version=incident.model_version,
        reason=f"incident #{incident.id}: {step}: {reason}"[:2000],
        details={"incident": incident.id, "step": step, **(extra or {})},
    )
