"""A registered model's evaluation set: held-out tickets that no training run of it sees.

The first training of a model fixes the set (a stratified share of the rows it was given)
and logs it as an artifact of that run; registered-model tags point at the newest
revision. Later runs exclude its rows by content (``row_digest``), ``retrain`` appends
tickets that arrived after the serving version's training cut-off (a new revision, logged
by that run; older revisions stay where they were logged), and ``validate`` scores
candidate and champion on it. Every run also logs the digests of the rows it trained on,
so ``validate`` can prove that neither version saw an evaluation row.

Everything lives in the MLflow artifact store, so it works wherever the runs' artifacts
do (local folder or S3).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from boltit.core.errors import BadInputError, RegistryUnavailableError
from boltit.core.model_contract import EVALUATION_SET_ARTIFACT, ROW_DIGESTS_ARTIFACT
from boltit.core.vocabulary import PRODUCTION

TAG_URI = "boltit.evaluation_set.uri"
TAG_DIGEST = "boltit.evaluation_set.digest"
TAG_ROWS = "boltit.evaluation_set.rows"
TAG_REVISION = "boltit.evaluation_set.revision"
TAG_TRAINING_CUTOFF = "training_cutoff"
"""Run tag: the newest ``created_at`` of the rows the run trained on (ISO UTC)."""

TEXT, CATEGORY, PRIORITY, DIGEST, ADDED_AT = "text", "category", "priority", "digest", "added_at"
_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """The form two tickets must share to count as the same row (NFKC, lower, one space)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", str(text)).lower()).strip()


def row_digest(text: str) -> str:
    """First 16 hex characters of the SHA-256 of the normalised ticket text."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()[:16]


def row_digests(texts: Iterable[str]) -> list[str]:
    return [row_digest(text) for text in texts]


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of what an evaluation reads: each row's text digest and category, in order."""
    digest = hashlib.sha256(b"boltit-evaluation-v1")
    for text, category in zip(frame[TEXT], frame[CATEGORY], strict=True):
        digest.update(f"{row_digest(text)}\x1f{category}\x1e".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class EvaluationSet:
    """One revision of a model's evaluation set.

    Attributes:
        frame: ``text``, ``category``, optional ``priority``, ``digest``, ``added_at``;
            one row per distinct ticket text.
        uri: Where this revision is stored (``runs:/<run>/evaluation_set/...``).
        digest: ``frame_digest`` of the frame.
        revision: 1 for the set a first training fixed, +1 per growth.
    """

    frame: pd.DataFrame
    uri: str
    digest: str
    revision: int

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def digests(self) -> set[str]:
        return set(self.frame[DIGEST])


def build_set(rows: pd.DataFrame, *, added_at: datetime) -> pd.DataFrame:
    """Evaluation rows in the stored shape, without repeated texts (the first one wins)."""
    columns = [c for c in (TEXT, CATEGORY, PRIORITY) if c in rows.columns]
    frame = rows[columns].reset_index(drop=True).copy()
    frame[DIGEST] = row_digests(frame[TEXT])
    frame[ADDED_AT] = pd.Timestamp(added_at).tz_convert(UTC)
    return frame.drop_duplicates(subset=DIGEST).reset_index(drop=True)


def extend_set(
    existing: pd.DataFrame, additions: pd.DataFrame, *, added_at: datetime
) -> tuple[pd.DataFrame, int]:
    """The set plus the additions it does not hold yet, and how many were added."""
    fresh = build_set(additions, added_at=added_at)
    fresh = fresh[~fresh[DIGEST].isin(set(existing[DIGEST]))]
    if fresh.empty:
        return existing, 0
    return pd.concat([existing, fresh], ignore_index=True), len(fresh)


def _unavailable(what: str) -> RegistryUnavailableError:
    return RegistryUnavailableError(f"MLflow failed while {what}")


def read_evaluation_set(client: MlflowClient, name: str) -> EvaluationSet | None:
    """The model's current evaluation set; None when the model or its set does not exist yet.

    Raises:
        BadInputError: The tags point at a file that is missing, unreadable or no longer
            matches the recorded digest.
    """
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise _unavailable(f"reading registered model {name!r}: {exc.message}") from exc
    uri = tags.get(TAG_URI)
    if not uri:
        return None
    frame = _read_parquet(client, uri, what=f"the evaluation set of {name!r}")
    digest = frame_digest(frame)
    if tags.get(TAG_DIGEST) and tags[TAG_DIGEST] != digest:
        raise BadInputError(
            f"the evaluation set of {name!r} at {uri} has digest {digest[:12]}, but tag "
            f"{TAG_DIGEST} records {tags[TAG_DIGEST][:12]}: it changed after it was recorded"
        )
    return EvaluationSet(
        frame=frame, uri=uri, digest=digest, revision=int(tags.get(TAG_REVISION, "1") or 1)
    )


def log_evaluation_set(frame: pd.DataFrame, *, revision: int) -> EvaluationSet:
    """Store ``frame`` as an artifact of the active run; returns the revision it becomes."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_evaluation_set needs an active MLflow run")
    with tempfile.TemporaryDirectory(prefix="boltit-evalset-") as folder:
        path = Path(folder) / Path(EVALUATION_SET_ARTIFACT).name
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(EVALUATION_SET_ARTIFACT).parent))
    return EvaluationSet(
        frame=frame,
        uri=f"runs:/{run.info.run_id}/{EVALUATION_SET_ARTIFACT}",
        digest=frame_digest(frame),
        revision=revision,
    )


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    """Create the registered model when it does not exist (the set's tags live on it)."""
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        try:
            client.create_registered_model(name)
        except MlflowException as again:
            if again.error_code != "RESOURCE_ALREADY_EXISTS":  # created meanwhile
                raise


def point_model_at(client: MlflowClient, name: str, evaluation_set: EvaluationSet) -> None:
    """Make ``evaluation_set`` the model's current revision (registered-model tags)."""
    for key, value in (
        (TAG_URI, evaluation_set.uri),
        (TAG_DIGEST, evaluation_set.digest),
        (TAG_ROWS, str(evaluation_set.rows)),
        (TAG_REVISION, str(evaluation_set.revision)),
    ):
        client.set_registered_model_tag(name, key, value)


def log_training_digests(texts: Iterable[str]) -> None:
    """Record the digests of the rows the active run trains on (``training/row_digests``)."""
    with tempfile.TemporaryDirectory(prefix="boltit-digests-") as folder:
        path = Path(folder) / Path(ROW_DIGESTS_ARTIFACT).name
        pd.DataFrame({DIGEST: row_digests(texts)}).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(ROW_DIGESTS_ARTIFACT).parent))


def training_digests(client: MlflowClient, run_id: str | None) -> set[str] | None:
    """Digests of the rows a run trained on; None when it recorded none (older runs)."""
    if not run_id:
        return None
    folder_name = str(Path(ROW_DIGESTS_ARTIFACT).parent)
    try:
        listed = {a.path for a in client.list_artifacts(run_id, folder_name)}
    except MlflowException as exc:
        raise _unavailable(f"listing the artifacts of run {run_id}: {exc.message}") from exc
    if ROW_DIGESTS_ARTIFACT not in listed:
        return None
    frame = _read_parquet(client, f"runs:/{run_id}/{ROW_DIGESTS_ARTIFACT}", what=f"run {run_id}")
    return set(frame[DIGEST].astype(str))


def training_cutoff(client: MlflowClient, run_id: str | None) -> datetime | None:
    """When a run's newest training row was created (tag), else when the run started."""
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise _unavailable(f"reading run {run_id}: {exc.message}") from exc
    tagged = run.data.tags.get(TAG_TRAINING_CUTOFF)
    if tagged:
        return datetime.fromisoformat(tagged).astimezone(UTC)
    return datetime.fromtimestamp(run.info.start_time / 1000.0, tz=UTC)


def cutoff_of(frame: pd.DataFrame, *, started: datetime) -> datetime:
    """The newest ``created_at`` of training rows when they have dates, else ``started``."""
    if "created_at" in frame.columns:
        newest = pd.to_datetime(frame["created_at"], utc=True, errors="coerce").max()
        if not pd.isna(newest):
            return newest.to_pydatetime().astimezone(UTC)
    return started.astimezone(UTC)


def _read_parquet(client: MlflowClient, uri: str, *, what: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory(prefix="boltit-read-") as folder:
        try:
            if uri.startswith("runs:/"):
                run_id, _, path = uri.removeprefix("runs:/").partition("/")
                local = client.download_artifacts(run_id, path, folder)
            else:
                local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder)
            return pd.read_parquet(local)
        except MlflowException as exc:
            raise BadInputError(f"cannot read {what} at {uri}: {exc.message}") from exc
        except (OSError, ValueError) as exc:
            raise BadInputError(f"cannot read {what} at {uri}: {exc}") from exc


def serving_cutoff(
    client: MlflowClient, name: str
) -> tuple[str, str | None, datetime | None] | None:
    """The Production version, its run and its training cut-off; None when nothing serves."""
    try:
        version = client.get_model_version_by_alias(name, PRODUCTION)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            return None
        raise _unavailable(f"reading the {PRODUCTION} alias of {name!r}: {exc.message}") from exc
    return str(version.version), version.run_id, training_cutoff(client, version.run_id)
