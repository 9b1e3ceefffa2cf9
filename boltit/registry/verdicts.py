"""What a version's latest validation recorded: the tags ``validate`` writes and its report.

``sync`` reads it to decide whether a Production move made in the UI can trust the verdict
(passed against the current champion under the current gate config) or must be judged
again, and under which gate config.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic import ValidationError

from boltit.core.vocabulary import TAG_VALIDATION_STATUS, VALIDATION_PASSED
from boltit.registry.gate_config import GateConfig

TAG_EVALUATION_SET = "validation.evaluation_set"
TAG_EVALUATION_DIGEST = "validation.evaluation_digest"
TAG_EVALUATION_ROWS = "validation.evaluation_rows"
TAG_CHAMPION = "validation.champion"
TAG_CONFIG_DIGEST = "validation.config_digest"
TAG_ACCURACY = "validation.accuracy"
TAG_VALIDATED_AT = "validation.validated_at"
TAG_REPORT = "validation.report"
"""``runs:/`` URI of the verdict's JSON report (full gate config, scores, results)."""
NO_CHAMPION = "none"
REPORT_FOLDER = "validation"


def config_digest(config: GateConfig) -> str:
    """SHA-256 of the gate config as canonical JSON: equal digests, equal verdict rules."""
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RecordedVerdict:
    """A version's latest verdict as its tags (and report) recorded it."""

    version: str
    passed: bool
    champion: str | None
    config_digest: str | None
    validated_at: str | None
    report_uri: str | None

    def trusted_for(self, *, champion: str | None, config: GateConfig) -> bool:
        """Passed against ``champion`` under exactly ``config``."""
        return (
            self.passed
            and self.config_digest is not None
            and self.champion == champion
            and self.config_digest == config_digest(config)
        )

    def describe(self) -> str:
        """``verdict of 2026-01-02 03:04:05 UTC against v1``."""
        when = "an unknown time"
        if self.validated_at:
            try:
                when = f"{datetime.fromisoformat(self.validated_at):%Y-%m-%d %H:%M:%S} UTC"
            except ValueError:
                when = self.validated_at
        against = f"v{self.champion}" if self.champion else "no champion"
        return f"verdict of {when} against {against}"


def recorded_verdict(client: MlflowClient, *, name: str, version: str) -> RecordedVerdict | None:
    """The latest verdict on ``version``; None when it was never validated."""
    tags = client.get_model_version(name, version).tags
    status = tags.get(TAG_VALIDATION_STATUS)
    if status is None:
        return None
    champion = tags.get(TAG_CHAMPION)
    return RecordedVerdict(
        version=str(version),
        passed=status == VALIDATION_PASSED,
        champion=None if champion in (None, NO_CHAMPION) else champion,
        config_digest=tags.get(TAG_CONFIG_DIGEST),
        validated_at=tags.get(TAG_VALIDATED_AT),
        report_uri=tags.get(TAG_REPORT) or _newest_report(client, name=name, version=version),
    )


def recorded_config(client: MlflowClient, verdict: RecordedVerdict) -> GateConfig | None:
    """The gate config the verdict was made under, read from its report; None if unreadable
    (no report, or a config this release's gates no longer accept)."""
    if not verdict.report_uri or not verdict.report_uri.startswith("runs:/"):
        return None
    run_id, _, path = verdict.report_uri.removeprefix("runs:/").partition("/")
    try:
        document: Any = json.loads(_download_text(client, run_id, path))
        return GateConfig.model_validate(document["config"])
    except (MlflowException, OSError, ValueError, KeyError, TypeError, ValidationError):
        return None


def _newest_report(client: MlflowClient, *, name: str, version: str) -> str | None:
    """Reports written before ``validation.report`` existed: the newest ``v<N>-*.json``."""
    run_id = client.get_model_version(name, version).run_id
    if not run_id:
        return None
    try:
        listed = client.list_artifacts(run_id, REPORT_FOLDER)
    except (MlflowException, OSError):
        return None
    mine = sorted(a.path for a in listed if PurePosixPath(a.path).name.startswith(f"v{version}-"))
    return f"runs:/{run_id}/{mine[-1]}" if mine else None


def _download_text(client: MlflowClient, run_id: str, path: str) -> str:
    with tempfile.TemporaryDirectory(prefix="boltit-report-") as folder:
        local = client.download_artifacts(run_id, path, folder)
        return Path(local).read_text(encoding="utf-8")
