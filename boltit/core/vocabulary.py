"""The registry's vocabulary: aliases, stages and tags every package agrees on."""

PRODUCTION = "Production"
"""Alias of the version that serves."""

UI_PRODUCTION_ALIAS = "production"
"""What MLflow 3.17.2's UI saves when a user types ``Production`` in its alias editor (it
lowercases every alias); sync reads it as a request to move ``Production``."""

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
SHADOW_FLAG = "shadow_enabled"
"""Whether Production's tickets are also scored by the challenger (stored, never returned)."""
CANARY_PERCENT_FLAG = "canary_percent"
"""The share of tickets (0-100, in the flag's ``value``) the challenger answers."""

# ``tickets.served_by``: which route answered. A canary attempt is "canary" or
# "canary-fallback"; the latter is a canary that raised, answered by Production instead.
SERVED_BY_PRODUCTION = "production"
SERVED_BY_CANARY = "canary"
SERVED_BY_CANARY_FALLBACK = "canary-fallback"

PREDICTION_ERROR = "prediction_error"
"""Audit action of a classify request the service could not answer (the error-rate rule)."""


def model_uri(name: str, alias: str = PRODUCTION) -> str:
    """``models:/<name>@<alias>``."""
    return f"models:/{name}@{alias}"
