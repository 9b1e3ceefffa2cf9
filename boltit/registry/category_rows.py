"""How many training rows taught each category of a version, for the ``min_class_rows`` gate.

Every training run logs ``evaluation/label_distribution.json`` with its training rows per
category (``train``) after any ``--min-class-rows`` folding, so a folded category is not
there and its fallback category is.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

# Written by boltit.training.train (_log_evaluation_artifacts).
LABEL_DISTRIBUTION_ARTIFACT = "evaluation/label_distribution.json"


def trained_category_rows(client: MlflowClient, *, run_id: str | None) -> dict[str, int] | None:
    """Training rows per category of the run, or None when the run logged none."""
    if not run_id:
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="boltit-labels-") as folder:
            local = client.download_artifacts(run_id, LABEL_DISTRIBUTION_ARTIFACT, folder)
            logged = json.loads(Path(local).read_text(encoding="utf-8"))
    except (MlflowException, OSError, ValueError):
        return None
    train = logged.get("train") if isinstance(logged, dict) else None
    if not isinstance(train, dict):
        return None
    return {str(k): int(v) for k, v in train.items()}
