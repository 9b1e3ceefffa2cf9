"""``boltit validate``: run every gate on a version and record the verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from boltit.db import Database
from boltit.names import PRODUCTION, TAG_VALIDATION_STATUS, VALIDATION_FAILED, VALIDATION_PASSED
from boltit.settings import Settings, load_settings
from registry.access import aliases, get_version, registry_errors
from registry.evaluation import (
    check_evaluation_frame,
    load_evaluation_file,
    load_version_cached,
    logged_evaluation_split,
    score_version,
)
from registry.gate_config import GateConfig, load_gate_config
from registry.gates import GateReport, GateResult, evaluate_gates
from registry.history import record_event
from registry.metrics import ModelEvaluation
from registry.transitions import clear_challenger, mark_challenger

_CURRENT_PRODUCTION = object()


@dataclass(frozen=True)
class ValidationResult:
    """A validation's verdict, the evaluations behind it and where the report went."""

    name: str
    version: str
    report: GateReport
    candidate: ModelEvaluation
    champion: ModelEvaluation | None
    report_artifact: str | None

    @property
    def passed(self) -> bool:
        return self.report.passed

    @property
    def failures(self) -> list[GateResult]:
        return self.report.failures


def _gate_tag(result: GateResult) -> str:
    if result.passed is None:
        return "disabled"
    verdict = "passed" if result.passed else "failed"
    if result.mode == "dry_run":
        verdict = f"dry_run {verdict}"
    observed = "n/a" if result.observed is None else f"{result.observed:.4g}"
    return f"{verdict} (observed {observed}, limit {result.limit})"


def _description(report: GateReport, *, when: datetime, data_source: str) -> str:
    verdict = "PASSED" if report.passed else "FAILED"
    champion = f"v{report.champion}" if report.champion else "none"
    lines = [
        f"Validation {verdict} at {when:%Y-%m-%d %H:%M:%S} UTC "
        f"(champion {champion}, data: {data_source}).",
    ]
    for result in report.results:
        marker = {True: "ok", False: "FAIL", None: "off"}[result.passed]
        if result.mode == "dry_run" and result.passed is False:
            marker = "fail (dry run)"
        lines.append(f"- {marker}: {result.describe()}")
    return "\n".join(lines)


def _evaluation_frame(
    client: MlflowClient,
    *,
    data: pd.DataFrame | Path | str | None,
    run_id: str | None,
    version: str,
) -> tuple[pd.DataFrame, str]:
    if data is None:
        frame = logged_evaluation_split(client, run_id=run_id, version=version)
        return frame, f"logged evaluation split of v{version}"
    if isinstance(data, pd.DataFrame):
        return check_evaluation_frame(data, source="the given frame"), "given frame"
    return load_evaluation_file(Path(data)), str(data)


def validate(
    *,
    client: MlflowClient,
    database: Database,
    name: str,
    version: str | int,
    actor: str,
    data: pd.DataFrame | Path | str | None = None,
    min_accuracy: float | None = None,
    settings: Settings | None = None,
    config: GateConfig | None = None,
    champion_version: Any = _CURRENT_PRODUCTION,
    mark: bool = True,
) -> ValidationResult:
    """Evaluate ``version`` and the Production version on the same held-out tickets.

    Records tags (``validation_status`` and one ``gate.<name>`` per gate), a summary in
    the description, a report artifact on the version's run and a history row. A pass
    marks the version ``challenger`` (stage Staging) unless ``mark`` is False.

    Args:
        data: held-out tickets (frame or CSV/Parquet path with ``text`` and ``category``);
            defaults to the candidate's logged ``evaluation/eval_split.parquet``.
        min_accuracy: overrides the ``min_accuracy`` gate's threshold.
        config: gate config; defaults to ``settings.gates_config`` over the packaged one.
        champion_version: version to compare with; defaults to the ``Production`` alias.
        mark: set ``challenger``/Staging on a pass (sync passes False).
    """
    settings = settings or load_settings()
    version = str(version).strip()
    gate_config = (config or load_gate_config(settings.gates_config)).with_min_accuracy(
        min_accuracy
    )
    candidate_version = get_version(client, name=name, version=version)
    frame, data_source = _evaluation_frame(
        client, data=data, run_id=candidate_version.run_id, version=version
    )
    threshold = gate_config.gates.auto_apply_precision.threshold
    auto_apply_threshold = settings.auto_apply_threshold if threshold is None else threshold

    def score(v: str) -> ModelEvaluation:
        return score_version(
            load_version_cached(name=name, version=v),
            frame,
            auto_apply_threshold=auto_apply_threshold,
            latency_samples=gate_config.latency_samples,
        )

    champion_id: str | None
    if champion_version is _CURRENT_PRODUCTION:
        champion_id = aliases(client, name=name).get(PRODUCTION)
    else:
        champion_id = None if champion_version is None else str(champion_version)
    if champion_id == version:
        champion_id = None  # revalidating the serving version: absolute gates only
    candidate = score(version)
    champion = score(champion_id) if champion_id else None
    report = evaluate_gates(candidate=candidate, champion=champion, config=gate_config)

    now = datetime.now(UTC)
    document = {
        "model_name": name,
        "validated_at": now.isoformat(),
        "actor": actor,
        "data": data_source,
        "rows": candidate.rows,
        "config": gate_config.model_dump(mode="json"),
        "report": report.to_dict(),
        "candidate": candidate.to_dict(),
        "champion": None if champion is None else champion.to_dict(),
    }
    status = VALIDATION_PASSED if report.passed else VALIDATION_FAILED
    artifact: str | None = None
    with registry_errors(f"cannot record the validation of version {version}"):
        for result in report.results:
            client.set_model_version_tag(name, version, f"gate.{result.name}", _gate_tag(result))
        client.set_model_version_tag(name, version, TAG_VALIDATION_STATUS, status)
        client.update_model_version(
            name, version, description=_description(report, when=now, data_source=data_source)
        )
        if candidate_version.run_id:
            artifact_file = f"validation/v{version}-{now:%Y%m%dT%H%M%S}.json"
            try:
                client.log_dict(candidate_version.run_id, document, artifact_file)
                artifact = f"runs:/{candidate_version.run_id}/{artifact_file}"
            except (MlflowException, OSError):
                artifact = None  # the tags and history still carry the verdict
        if mark and report.passed and aliases(client, name=name).get(PRODUCTION) != version:
            mark_challenger(client, name=name, version=version)
        elif not report.passed:
            clear_challenger(client, name=name, version=version)

    with database.session() as session:
        record_event(
            session,
            client,
            action="validate",
            actor=actor,
            model_name=name,
            from_version=champion_id,
            to_version=version,
            details={
                "gates": {
                    "passed": report.passed,
                    "failed": [r.name for r in report.failures],
                    "results": json.loads(json.dumps(report.to_dict()["results"])),
                },
                "data": data_source,
                "report_artifact": artifact,
            },
        )
    return ValidationResult(
        name=name,
        version=version,
        report=report,
        candidate=candidate,
        champion=champion,
        report_artifact=artifact,
    )
