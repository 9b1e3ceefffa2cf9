"""One monitoring pass, and the watch loop that repeats it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.errors import BoltitError
from boltit.core.leases import Leadership, lease_name
from boltit.core.locks import LockKind, hold
from boltit.core.settings import Settings
from boltit.monitoring import cloudwatch
from boltit.monitoring.feedback_sources import FeedbackSources, check_feedback
from boltit.monitoring.respond import MONITOR_ACTOR, Response, respond
from boltit.monitoring.rules import AlertConfig, load_alert_config
from boltit.monitoring.status import MonitorStatus, collect_status

log = logging.getLogger(__name__)


@dataclass
class PassResult:
    """What one pass saw and did."""

    status: MonitorStatus
    response: Response
    published: list[str] = field(default_factory=list)
    publish_error: str | None = None
    feedback: FeedbackSources | None = None


def run_once(
    *,
    settings: Settings,
    database: Database,
    client: MlflowClient,
    config: AlertConfig | None = None,
    service_url: str | None = None,
    actor: str = MONITOR_ACTOR,
    verify_timeout: float = 30.0,
) -> PassResult:
    """Compute the status, act on critical model-quality alerts, publish the figures."""
    config = config or load_alert_config(settings)
    # One pass at a time per model: a second monitor acting on the same alert would open a
    # second incident and could roll back again, onto the version that just regressed.
    with hold(database, LockKind.monitor, model_name=settings.model_name, holder=actor):
        status = collect_status(settings=settings, database=database, client=client, config=config)
        response = respond(
            settings=settings,
            database=database,
            client=client,
            status=status,
            actor=actor,
            service_url=service_url,
            verify_timeout=verify_timeout,
        )
    result = PassResult(status=status, response=response)
    # Reported and audited only: a flood is for a human to judge, never a reason to act.
    result.feedback = check_feedback(
        database,
        settings=settings,
        since=status.computed_at - timedelta(days=status.config.window_days),
        actor=actor,
    )
    try:
        result.published = cloudwatch.publish(settings=settings, status=status)
    except BoltitError as exc:
        # Publishing is reporting; it must never stop the monitor from acting.
        log.warning("%s", exc)
        result.publish_error = str(exc)
    return result


def watch(
    *,
    settings: Settings,
    database: Database,
    client: MlflowClient,
    interval: float,
    passes: int | None = None,
    service_url: str | None = None,
    on_pass: Callable[[PassResult], None] | None = None,
    on_error: Callable[[BoltitError], None] | None = None,
    on_leadership: Callable[[str], None] | None = None,
) -> int:
    """Repeat :func:`run_once` every ``interval`` seconds; ``passes`` bounds the loop.

    Only the holder of the ``monitor:<model>`` lease runs passes, so a second ``--watch``
    (two pods) waits and takes over within a lease period of the first one's death;
    ``on_leadership`` hears each change of leader. A standby's turns count towards ``passes``.

    A pass that fails (e.g. the registry is down mid-rollback) is reported through
    ``on_error`` and the loop goes on: the incident it opened already records how far it got,
    and the next pass does not act twice on the same incident.

    Returns the number of passes run.
    """
    config = load_alert_config(settings)
    leadership = Leadership(
        database,
        name=lease_name("monitor", settings.model_name),
        seconds=settings.leader_lease_seconds,
        model_name=settings.model_name,
        on_change=on_leadership,
    )
    with leadership:
        return _watch_while_leading(
            leadership,
            settings=settings,
            database=database,
            client=client,
            config=config,
            interval=interval,
            passes=passes,
            service_url=service_url,
            on_pass=on_pass,
            on_error=on_error,
        )


def _watch_while_leading(
    leadership: Leadership,
    *,
    settings: Settings,
    database: Database,
    client: MlflowClient,
    config: AlertConfig,
    interval: float,
    passes: int | None,
    service_url: str | None,
    on_pass: Callable[[PassResult], None] | None,
    on_error: Callable[[BoltitError], None] | None,
) -> int:
    done = turns = 0
    while passes is None or turns < passes:
        started = time.monotonic()
        turns += 1
        if leadership.is_leader:
            done += 1
            try:
                result = run_once(
                    settings=settings,
                    database=database,
                    client=client,
                    config=config,
                    service_url=service_url,
                )
            except BoltitError as exc:
                log.error("monitoring pass failed: %s", exc)
                if on_error is not None:
                    on_error(exc)
            else:
                if on_pass is not None:
                    on_pass(result)
        if passes is not None and turns >= passes:
            break
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return done
