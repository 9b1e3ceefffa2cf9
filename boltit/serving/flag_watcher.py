"""Runtime flags, re-read from the database often enough that every replica agrees within 1 s."""

from __future__ import annotations

import logging
import threading

from boltit.core import flags
from boltit.core.db import Database
from boltit.core.vocabulary import AUTO_APPLY_FLAG

log = logging.getLogger(__name__)


class FlagWatcher:
    """Holds the current flag values; a daemon thread refreshes them from the table."""

    def __init__(
        self, *, database: Database, defaults: dict[str, bool], interval_seconds: float
    ) -> None:
        self._database = database
        self._defaults = dict(defaults)
        self.interval_seconds = interval_seconds
        self.values: dict[str, bool] = dict(defaults)
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def auto_apply_enabled(self) -> bool:
        """Whether confident predictions may be auto-applied right now."""
        return self.values.get(AUTO_APPLY_FLAG, False)

    def refresh(self) -> dict[str, bool]:
        """Read every flag now."""
        with self._database.session() as session:
            values = flags.read_all(session, defaults=self._defaults)
        self.values = values  # one reference assignment; readers never see a mix
        self.last_error = None
        return values

    def start(self) -> None:
        """Start the refresh thread."""
        self._thread = threading.Thread(target=self._run, name="flag-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the refresh thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.refresh()
            except Exception as exc:  # keep the last known values while the store is down
                self.last_error = str(exc)
                log.warning("could not refresh feature flags: %s", exc)
