"""Where data checks write under the state folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from boltit.core.settings import Settings


def data_docs_dir(settings: Settings) -> Path:
    """The GX Data Docs site (``index.html``) every suite run adds its page to."""
    return settings.state_dir / "data_docs"


def result_path(settings: Settings, suite: str) -> Path:
    """A new, timestamped JSON result file for one run of ``suite``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return settings.state_dir / "data_checks" / f"{suite}-{stamp}.json"


def drift_dir(settings: Settings) -> Path:
    """The folder of drift HTML reports and their JSON twins."""
    return settings.state_dir / "drift"
