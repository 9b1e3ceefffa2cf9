"""``boltit validate``: run every gate on a version and record the verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.evaluation_sets import (
    frame_digest,
    read_evaluation_set,
    row_digests,
    training_digests,
)
from boltit.core.settings import Settings
from boltit.core.vocabulary import (
    PRODUCTION,
    TAG_VALIDATION_STATUS,
    VALIDATION_FAILED,
    VALIDATION_PASSED,
)
from boltit.data_checks.shadow import ShadowEvidence, shadow_evidence
from boltit.registry.baseline import logged_baseline
from boltit.registry.behaviour import BehaviourEvidence, check_behaviour
from boltit.registry.category_rows import trained_category_rows
from boltit.registry.gate_config import GateConfig, load_gate_config
from boltit.registry.gate_evidence import ModelEvaluation
from boltit.registry.gates import GateReport, GateResult, evaluate_gates
from boltit.registry.history import record_event
from boltit.registry.lookup import aliases, get_version, registry_errors
from boltit.registry.scoring import (
    LoadedVersion,
    check_evaluation_frame,
    load_evaluation_file,
    load_version_cached,
    logged_evaluation_split,
    score_versions,
)
from boltit.registry.transitions import clear_challenger, mark_challenger
from boltit.registry.verdicts import (
    NO_CHAMPION,
    TAG_ACCURACY,
    TAG_CHAMPION,
    TAG_CONFIG_DIGEST,
    TAG_EVALUATION_DIGEST,
    TAG_EVALUATION_ROWS,
    TAG_EVALUATION_SET,
    TAG_REPORT,
    TAG_VALIDATED_AT,
    config_digest,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is 3.12+

    from boltit.registry.target import VersionTarget

_CURRENT_PRODUCTION = object()
MODEL_EVALUATION_SET = "model evaluation set"


@dataclass(frozen=True)
class EvaluationData:
    """The held-out tickets a validation scores on, and what the verdict calls them.

    Attributes:
        frame: ``text``, ``category``.
        source: ``model evaluation set``, the file given, ``given frame``, or (a model
            trained before evaluation sets existed) the candidate's logged split.
        digest: ``boltit.core.evaluation_sets.frame_digest`` of the frame.
        uri: Where the model's evaluation set revision is stored, when it is that.
    """

    frame: pd.DataFrame
    source: str
    digest: str
    uri: str | None = None

    @property
    def rows(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class ValidationResult:
    """A validation's verdict, the evaluations behind it and where the report went."""

    name: str
    version: str
    report: GateReport
    candidate: ModelEvaluation
    champion: ModelEvaluation | None
    report_artifact: str | None
    evaluation: EvaluationData | None = None
    config_digest: str = ""
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.report.passed

    @property
    def failures(self) -> list[GateResult]:
        return self.report.failures


def _gate_tag(result: GateResult) -> str:
    if result.passed is None:
        return "disabled" if result.mode == "disabled" else result.note
    verdict = "passed" if result.passed else "failed"
    if result.mode == "dry_run":
        verdict = f"dry_run {verdict}"
    observed = result.observed_text
    return f"{verdict} (observed {observed}, limit {result.limit})"


def _description(
    report: GateReport,
    *,
    when: datetime,
    evaluation: EvaluationData,
    config_digest: str,
    notes: list[str],
) -> str:
    verdict = "PASSED" if report.passed else "FAILED"
    champion = f"v{report.champion}" if report.champion else "none"
    lines = [
        f"Validation {verdict} at {when:%Y-%m-%d %H:%M:%S} UTC "
        f"(champion {champion}, data: {evaluation.source}, {evaluation.rows:,} rows, "
        f"digest {evaluation.digest[:12]}; gate config {config_digest[:12]}).",
    ]
    lines.extend(f"- note: {note}" for note in notes)
    for result in report.results:
        marker = {True: "ok", False: "FAIL", None: "off"}[result.passed]
        if result.passed is None and result.mode != "disabled":
            marker = "skipped"
        if result.mode == "dry_run" and result.passed is False:
            marker = "fail (dry run)"
        lines.append(f"- {marker}: {result.describe()}")
    return "\n".join(lines)


def _evaluation_data(
    client: MlflowClient,
    *,
    name: str,
    data: pd.DataFrame | Path | str | None,
    data_label: str | None,
    run_id: str | None,
    version: str,
) -> EvaluationData:
    """The model's evaluation set by default; a given frame or file when pinned."""
    if data is None:
        with registry_errors(f"cannot read the evaluation set of {name!r}"):
            model_set = read_evaluation_set(client, name)
        if model_set is not None:
            frame = check_evaluation_frame(
                model_set.frame, source=f"{MODEL_EVALUATION_SET} ({model_set.uri})"
            )
            return EvaluationData(frame, MODEL_EVALUATION_SET, frame_digest(frame), model_set.uri)
        # A model trained before evaluation sets existed: its candidate's own split.
        frame = logged_evaluation_split(client, run_id=run_id, version=version)
        return EvaluationData(frame, f"logged evaluation split of v{version}", frame_digest(frame))
    if isinstance(data, pd.DataFrame):
        frame = check_evaluation_frame(data, source=data_label or "the given frame")
        return EvaluationData(frame, data_label or "given frame", frame_digest(frame))
    frame = load_evaluation_file(Path(data))
    return EvaluationData(frame, data_label or str(data), frame_digest(frame))


def _check_overlap(
    client: MlflowClient,
    *,
    name: str,
    evaluation: EvaluationData,
    versions: dict[str, str],
) -> list[str]:
    """Refuse evaluation rows a compared version trained on; notes for unverifiable ones.

    Args:
        versions: version -> role (``candidate``, ``champion``).

    Raises:
        BadInputError: Some evaluation rows are among a version's recorded training rows.
    """
    digests = row_digests(evaluation.frame["text"])
    seen: list[str] = []
    notes: list[str] = []
    for version, role in versions.items():
        run_id = get_version(client, name=name, version=version).run_id
        with registry_errors(f"cannot read the training rows of version {version}"):
            trained = training_digests(client, run_id)
        if trained is None:
            notes.append(f"overlap unverified for v{version} (its run recorded no training rows)")
            continue
        overlap = sum(d in trained for d in digests)
        if overlap:
            seen.append(f"{overlap:,} in the training rows of v{version} ({role})")
    if seen:
        raise BadInputError(
            f"refusing to compare on {evaluation.source} ({evaluation.rows:,} rows): "
            f"{'; '.join(seen)}; nothing was recorded (evaluate on rows neither version "
            "trained on: the model evaluation set, or --data with other tickets)"
        )
    return notes


def _record_validation(
    client: MlflowClient,
    database: Database,
    *,
    name: str,
    actor: str,
    champion: str | None,
    candidate: str,
    details: dict[str, object],
) -> None:
    """One ``validate`` row in the history: a verdict, or a refusal to judge."""
    with database.session() as session:
        record_event(
            session,
            client,
            action="validate",
            actor=actor,
            model_name=name,
            from_version=champion,
            to_version=candidate,
            details=details,
        )


def _load_compared(
    client: MlflowClient,
    database: Database,
    *,
    name: str,
    versions: dict[str, str],
    candidate: str,
    champion: str | None,
    actor: str,
) -> dict[str, LoadedVersion]:
    """Load every compared version; one that cannot load is a refusal kept in the history.

    Raises:
        BadInputError: A version cannot be loaded (recorded as a ``validate`` event with
            outcome ``refused``; no verdict tag is written, so nothing reads it as judged).
    """
    loaded: dict[str, LoadedVersion] = {}
    for version, role in versions.items():
        try:
            loaded[version] = load_version_cached(name=name, version=version)
        except BadInputError as exc:
            refusal = f"{role} {exc}"
            _record_validation(
                client,
                database,
                name=name,
                actor=actor,
                champion=champion,
                candidate=candidate,
                details={
                    "outcome": "refused",
                    "refusal": refusal,
                    "unloadable": {"version": version, "role": role},
                    "champion": champion,
                },
            )
            raise BadInputError(f"cannot validate: {refusal}") from exc
    return loaded


@dataclass(frozen=True)
class _Verdict:
    """A judged version and everything its verdict rests on: what the recording steps share."""

    name: str
    version: str
    actor: str
    run_id: str | None
    evaluation: EvaluationData
    gate_config: GateConfig
    config_digest: str
    champion_id: str | None
    notes: list[str]
    candidate: ModelEvaluation
    champion: ModelEvaluation | None
    behaviour: BehaviourEvidence
    report: GateReport
    when: datetime
    shadow: ShadowEvidence | None = None

    @property
    def status(self) -> str:
        return VALIDATION_PASSED if self.report.passed else VALIDATION_FAILED

    def document(self) -> dict[str, Any]:
        """The report artifact: the verdict with the config and evaluations it came from."""
        evaluation = self.evaluation
        return {
            "model_name": self.name,
            "validated_at": self.when.isoformat(),
            "actor": self.actor,
            "data": evaluation.source,
            "rows": self.candidate.rows,
            "evaluation": {
                "set": evaluation.source,
                "digest": evaluation.digest,
                "rows": evaluation.rows,
                "uri": evaluation.uri,
            },
            "champion_version": self.champion_id,
            "notes": self.notes,
            "config_digest": self.config_digest,
            "config": self.gate_config.model_dump(mode="json"),
            "report": self.report.to_dict(),
            "candidate": self.candidate.to_dict(),
            "champion": None if self.champion is None else self.champion.to_dict(),
            "behaviour": self.behaviour.to_dict(),
            "shadow": None if self.shadow is None else self.shadow.to_dict(),
        }

    def tags(self, artifact: str | None) -> dict[str, str]:
        """The verdict's tags but ``validation_status``, which is written after them."""
        return {
            TAG_EVALUATION_SET: self.evaluation.source,
            TAG_EVALUATION_DIGEST: self.evaluation.digest,
            TAG_EVALUATION_ROWS: str(self.evaluation.rows),
            TAG_CHAMPION: self.champion_id or NO_CHAMPION,
            TAG_CONFIG_DIGEST: self.config_digest,
            TAG_ACCURACY: repr(float(self.candidate.accuracy)),
            TAG_VALIDATED_AT: self.when.isoformat(),
            TAG_REPORT: artifact or "",
        }

    def history_details(self, artifact: str | None) -> dict[str, object]:
        report = self.report
        return {
            "gates": {
                "passed": report.passed,
                "failed": [r.name for r in report.failures],
                "results": json.loads(json.dumps(report.to_dict()["results"])),
            },
            "data": self.evaluation.source,
            "evaluation_set": self.evaluation.source,
            "evaluation_digest": self.evaluation.digest,
            "evaluation_rows": self.evaluation.rows,
            "champion": self.champion_id,
            "config_digest": self.config_digest,
            "notes": self.notes,
            "report_artifact": artifact,
        }

    def result(self, artifact: str | None) -> ValidationResult:
        return ValidationResult(
            name=self.name,
            version=self.version,
            report=self.report,
            candidate=self.candidate,
            champion=self.champion,
            report_artifact=artifact,
            evaluation=self.evaluation,
            config_digest=self.config_digest,
            notes=tuple(self.notes),
        )


def _champion_id(
    client: MlflowClient, *, name: str, version: str, champion_version: Any
) -> str | None:
    champion_id: str | None
    if champion_version is _CURRENT_PRODUCTION:
        champion_id = aliases(client, name=name).get(PRODUCTION)
    else:
        champion_id = None if champion_version is None else str(champion_version)
    if champion_id == version:
        return None  # revalidating the serving version: absolute gates only
    return champion_id


def _score(
    client: MlflowClient,
    *,
    settings: Settings,
    gate_config: GateConfig,
    candidate: LoadedVersion,
    champion: LoadedVersion | None,
    frame: pd.DataFrame,
    run_id: str | None,
    shadow: ShadowEvidence | None = None,
) -> tuple[ModelEvaluation, ModelEvaluation | None, BehaviourEvidence, GateReport]:
    """Score both versions, check the candidate's behaviour, and run every gate."""
    threshold = gate_config.gates.auto_apply_precision.threshold
    auto_apply_threshold = settings.auto_apply_threshold if threshold is None else threshold
    # Both versions predict the same rows (the drop gates pair them row by row) and are
    # timed together, interleaved, so machine load cannot favour either.
    candidate_scores, champion_scores = score_versions(
        candidate,
        champion,
        frame,
        auto_apply_threshold=auto_apply_threshold,
        latency_samples=gate_config.latency_samples,
    )
    # The candidate alone: behaviour is judged against fixed expectations, not the champion.
    behaviour = check_behaviour(candidate.classifier, frame["text"].tolist(), config=gate_config)
    report = evaluate_gates(
        candidate=candidate_scores,
        champion=champion_scores,
        config=gate_config,
        latency_budget_ms=settings.single_predict_budget_ms,
        baseline=logged_baseline(client, run_id=run_id, texts=frame["text"].tolist()),
        behaviour=behaviour,
        category_rows=trained_category_rows(client, run_id=run_id),
        shadow=shadow,
    )
    return candidate_scores, champion_scores, behaviour, report


def _shadow(
    database: Database, config: GateConfig, *, version: str, champion: str | None
) -> ShadowEvidence:
    """The candidate's shadow answers beside the champion's, for the ``shadow_*`` gates."""
    since = datetime.now(UTC) - timedelta(days=config.shadow.days)
    with database.session() as session:
        return shadow_evidence(session, since=since, version=version, champion=champion)


def _log_report(client: MlflowClient, verdict: _Verdict) -> str | None:
    """The report artifact's ``runs:/`` URI, or None when it could not be logged."""
    if not verdict.run_id:
        return None
    artifact_file = f"validation/v{verdict.version}-{verdict.when:%Y%m%dT%H%M%S%f}.json"
    try:
        client.log_dict(verdict.run_id, verdict.document(), artifact_file)
    except (MlflowException, OSError):
        return None  # the tags and history still carry the verdict
    return f"runs:/{verdict.run_id}/{artifact_file}"


def _record_verdict(
    client: MlflowClient, database: Database, verdict: _Verdict, *, mark: bool
) -> str | None:
    """Tags, report artifact, description, challenger mark, then the history row.

    Returns:
        The report artifact's URI, or None when it could not be logged.
    """
    name, version, report = verdict.name, verdict.version, verdict.report
    with registry_errors(f"cannot record the validation of version {version}"):
        for result in report.results:
            client.set_model_version_tag(name, version, f"gate.{result.name}", _gate_tag(result))
        artifact = _log_report(client, verdict)
        for key, value in verdict.tags(artifact).items():
            client.set_model_version_tag(name, version, key, value)
        # Written last: a verdict is only read as passed once everything it rests on is.
        client.set_model_version_tag(name, version, TAG_VALIDATION_STATUS, verdict.status)
        description = _description(
            report,
            when=verdict.when,
            evaluation=verdict.evaluation,
            config_digest=verdict.config_digest,
            notes=verdict.notes,
        )
        client.update_model_version(name, version, description=description)
        if mark and report.passed and aliases(client, name=name).get(PRODUCTION) != version:
            mark_challenger(client, name=name, version=version)
        elif not report.passed:
            clear_challenger(client, name=name, version=version)
    _record_validation(
        client,
        database,
        name=name,
        actor=verdict.actor,
        champion=verdict.champion_id,
        candidate=version,
        details=verdict.history_details(artifact),
    )
    return artifact


def validate(
    *,
    data: pd.DataFrame | Path | str | None = None,
    data_label: str | None = None,
    min_accuracy: float | None = None,
    config: GateConfig | None = None,
    champion_version: Any = _CURRENT_PRODUCTION,
    mark: bool = True,
    **target: Unpack[VersionTarget],
) -> ValidationResult:
    """Evaluate ``version`` and the Production version on the same held-out tickets.

    Records tags (``validation_status`` and one ``gate.<name>`` per gate), a summary in
    the description, a report artifact on the version's run and a history row. A pass
    marks the version ``challenger`` (stage Staging) unless ``mark`` is False.

    Args:
        data: held-out tickets (frame or CSV/Parquet path with ``text`` and ``category``);
            defaults to the model's evaluation set (the candidate's logged split for a
            model trained before evaluation sets existed). Rows that the candidate or the
            champion trained on are refused (``BadInputError``, nothing recorded).
        data_label: what the verdict calls ``data`` (the CLI passes the file path).
        min_accuracy: overrides the ``min_accuracy`` gate's threshold.
        config: gate config; defaults to ``settings.gates_config`` over the packaged one.
        champion_version: version to compare with; defaults to the ``Production`` alias.
        mark: set ``challenger``/Staging on a pass (sync passes False).
    """
    client, database, settings = target["client"], target["database"], target["settings"]
    name, actor, version = target["name"], target["actor"], str(target["version"]).strip()
    gate_config = (config or load_gate_config(settings.gates_config)).with_min_accuracy(
        min_accuracy
    )
    run_id = get_version(client, name=name, version=version).run_id
    evaluation = _evaluation_data(
        client, name=name, data=data, data_label=data_label, run_id=run_id, version=version
    )
    champion_id = _champion_id(
        client, name=name, version=version, champion_version=champion_version
    )
    compared = {version: "candidate"} | ({champion_id: "champion"} if champion_id else {})
    notes = _check_overlap(client, name=name, evaluation=evaluation, versions=compared)
    loaded = _load_compared(
        client,
        database,
        name=name,
        versions=compared,
        candidate=version,
        champion=champion_id,
        actor=actor,
    )
    # Live evidence: without a champion there is nothing to have shadowed against.
    shadow = _shadow(database, gate_config, version=version, champion=champion_id)
    candidate, champion, behaviour, report = _score(
        client,
        settings=settings,
        gate_config=gate_config,
        candidate=loaded[version],
        champion=loaded[champion_id] if champion_id else None,
        frame=evaluation.frame,
        run_id=run_id,
        shadow=shadow,
    )
    verdict = _Verdict(
        name=name,
        version=version,
        actor=actor,
        run_id=run_id,
        evaluation=evaluation,
        gate_config=gate_config,
        config_digest=config_digest(gate_config),
        champion_id=champion_id,
        notes=notes,
        candidate=candidate,
        champion=champion,
        behaviour=behaviour,
        report=report,
        when=datetime.now(UTC),
        shadow=shadow,
    )
    return verdict.result(_record_verdict(client, database, verdict, mark=mark))
