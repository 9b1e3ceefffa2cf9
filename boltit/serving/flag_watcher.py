"""Runtime flags, re-read from the database often enough that every replica agrees within 1 s."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from boltit.core import flags
from boltit.core.db import Database
from boltit.core.flags import FlagValues

log = logging.getLogger(__name__)


class FlagWatcher:
    """Holds the current flag values; a daemon thread refreshes them from the table.

    ``current`` is one immutable snapshot of every flag, replaced whole on each refresh, so
    a request that reads it once sees auto-apply, shadow and the canary share of one moment.
    ``on_change`` runs (in the refreshing thread) after the first refresh and after each one
    that changed a value.
    """

    def __init__(
        self,
        *,
        database: Database,
        defaults: FlagValues,
        interval_seconds: float,
        on_change: Callable[[FlagValues], None] | None = None,
    ) -> None:
        self._database = database
        self.defaults = defaults
        self.interval_seconds = interval_seconds
        self.current: FlagValues = defaults
        self.last_error: str | None = None
        self._on_change = on_change
        self._refreshed = False
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def auto_apply_enabled(self) -> bool:
        """Whether confident predictions may be auto-applied right now."""
        return self.current.auto_apply_enabled

    @property
    def shadow_enabled(self) -> bool:
        """Whether Production's tickets are also scored by the challenger right now."""
        return self.current.shadow_enabled

    @property
    def canary_percent(self) -> float:
        """The challenger's share of tickets right now (0-100)."""
        return self.current.canary_percent

    @property
    def values(self) -> dict[str, bool | float]:
        """Every flag by name (``/health`` shows them)."""
        return self.current.as_dict()

    def refresh(self) -> FlagValues:
        """Read every flag now."""
        # Serialised, the read included: an admin request's refresh must not be overtaken
        # by the thread's older read, nor report its change out of order.
        with self._refresh_lock:
            with self._database.session() as session:
                values = flags.read_values(session, defaults=self.defaults)
            changed = values != self.current or not self._refreshed
            self.current = values  # one reference assignment; readers never see a mix
            self._refreshed = True
            self.last_error = None
            if changed and self._on_change is not None:
                self._on_change(values)
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
