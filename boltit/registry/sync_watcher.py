"""The registry sync watcher that ``boltit up`` runs beside the service.

``boltit registry sync --watch`` stops at the first error, which suits a command a person
watches; a watcher started by ``up`` must outlive a fresh store with no model yet and a
registry that is briefly down, so each failed pass is reported once and retried.
Run as ``python -m boltit.registry.sync_watcher`` (settings from the environment, like the CLI).
Two copies may run (two replicas of ``up``, a Deployment of two): only the holder of the
``sync:<model>`` lease syncs, so a change made in the UI is judged once.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable

from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.errors import BoltitError
from boltit.core.leases import Leadership, lease_name
from boltit.core.settings import Settings
from boltit.registry.sync import SyncOutcome, sync

DEFAULT_INTERVAL_S = 5.0


def watch_forever(
    *,
    client: MlflowClient,
    database: Database,
    name: str,
    actor: str,
    settings: Settings,
    interval: float = DEFAULT_INTERVAL_S,
    on_outcome: Callable[[SyncOutcome], None],
    on_error: Callable[[str], None],
    stop: threading.Event | None = None,
    max_passes: int | None = None,
    leadership: Leadership | None = None,
) -> int:
    """Sync every ``interval`` s until ``stop`` is set; returns the passes that failed.

    With ``leadership``, a pass runs only while this process leads; the others are skipped.
    """
    stop = stop or threading.Event()
    failed, passes, last_error = 0, 0, None
    while not stop.is_set() and (max_passes is None or passes < max_passes):
        if leadership is not None and not leadership.is_leader:
            passes += 1
            stop.wait(interval)
            continue
        try:
            for outcome in sync(
                client=client, database=database, name=name, actor=actor, settings=settings
            ):
                on_outcome(outcome)
            last_error = None
        except BoltitError as exc:
            failed += 1
            if str(exc) != last_error:  # a model not registered yet is said once, not 720/h
                on_error(str(exc))
            last_error = str(exc)
        passes += 1
        if max_passes is None or passes < max_passes:
            stop.wait(interval)
    return failed


def main() -> int:
    """Entry point of the child process ``boltit up`` starts."""
    from boltit.core.settings import load_settings
    from boltit.core.tracking import configure_mlflow

    interval = float(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_INTERVAL_S
    # SIGTERM (``up`` stopping, a pod deleted) unwinds, so the lease is handed back at once.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    settings = load_settings()
    database = Database(settings.database_url)

    def said(text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} registry sync: {text}", flush=True)

    with Leadership(
        database,
        name=lease_name("sync", settings.model_name),
        seconds=settings.leader_lease_seconds,
        model_name=settings.model_name,
        on_change=said,
    ) as leadership:
        watch_forever(
            client=configure_mlflow(settings),
            database=database,
            name=settings.model_name,
            actor="boltit-up sync watcher",
            settings=settings,
            interval=interval,
            on_outcome=lambda o: said(
                f"{o.change.via} change to v{o.change.version or '-'}: {o.outcome}: {o.reason}"
            ),
            on_error=lambda text: said(f"waiting: {text}"),
            leadership=leadership,
        )
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
