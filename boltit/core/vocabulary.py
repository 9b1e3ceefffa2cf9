"""The registry's vocabulary: aliases, stages and tags every package agrees on."""

PRODUCTION = "Production"
"""Alias of the version that serves."""

PREVIOUS = "previous"
"""Alias of the last version that served before ``Production``."""

CHALLENGER = "challenger"
"""Alias of a version that passed its gates and waits for promotion."""

STAGE_STAGING = "Staging"
STAGE_PRODUCTION = "Production"
STAGE_ARCHIVED = "Archived"

TAG_VALIDATION_STATUS = "validation_status"
VALIDATION_PASSED = "passed"
VALIDATION_FAILED = "failed"

AUTO_APPLY_FLAG = "auto_apply_enabled"

PREDICTION_ERROR = "prediction_error"
"""Audit action of a classify request the service could not answer (the error-rate rule)."""


def model_uri(name: str, alias: str = PRODUCTION) -> str:
    """``models:/<name>@<alias>``."""
    return f"models:/{name}@{alias}"
