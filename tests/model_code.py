"""A trained classifier registered behind test model code: a version that misbehaves on cue."""

from __future__ import annotations

from pathlib import Path

import mlflow


def register_model_code(code: Path, *, model_dir: Path, name: str) -> str:
    """Log ``code`` (an MLflow model-from-code) over ``model_dir``'s classifier as a new version.

    Args:
        code: The wrapper, which reads the ``classifier`` artifact.
        model_dir: A downloaded model version (holds ``artifacts/classifier``).
        name: The registered model that gets the new version.

    Returns:
        The new version's number.
    """
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            artifacts={"classifier": str(model_dir / "artifacts" / "classifier")},
            pip_requirements=[],
            registered_model_name=name,
        )
    assert info.registered_model_version is not None
    return str(info.registered_model_version)
