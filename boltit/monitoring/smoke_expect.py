"""What the smoke test expects, read from the registry, the flags and the alert rules."""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from boltit.core import flags
from boltit.core.db import Database
from boltit.core.model_contract import ModelContractError, read_eval_split
from boltit.core.settings import Settings
from boltit.core.vocabulary import AUTO_APPLY_FLAG, PRODUCTION
from boltit.monitoring.rules import AlertConfig, load_alert_config
from boltit.monitoring.smoke import SmokeExpectations
from boltit.monitoring.status import aliases

DEFAULT_LATENCY_CALLS = 20


def known_categories(client: MlflowClient, name: str, version: str) -> frozenset[str] | None:
    """Categories in the version's held-out split (what it was trained and judged on).

    None when the split cannot be read: then every smoke ticket is checked.
    """
    try:
        run_id = client.get_model_version(name, version).run_id
        if not run_id:
            return None
        frame = read_eval_split(client, run_id)
    except (ModelContractError, MlflowException):  # an unreadable split only widens the check
        return None
    if "category" not in frame.columns:
        return None
    return frozenset(str(c) for c in frame["category"].dropna().unique())


def latency_budget_ms(config: AlertConfig) -> float:
    """The latency rule's warning threshold: a smoke run slower than that would alert soon."""
    for rule in config.rules:
        if rule.metric == "latency_p95_seconds":
            return rule.warning * 1000.0
    return 2000.0


def registry_expectations(
    *,
    settings: Settings,
    database: Database,
    client: MlflowClient,
    version: str | None = None,
    auto_apply: bool | None = None,
    p95_budget_ms: float | None = None,
    latency_calls: int = DEFAULT_LATENCY_CALLS,
) -> SmokeExpectations:
    """Expect Production's version (or ``version``), its categories, the stored auto-apply
    flag (or ``auto_apply``) and the latency rule's budget (or ``p95_budget_ms``)."""
    expected = version or aliases(client, settings.model_name).get(PRODUCTION)
    if auto_apply is None:
        with database.session() as session:
            auto_apply = flags.read_flag(
                session, AUTO_APPLY_FLAG, default=settings.auto_apply_enabled
            )
    if p95_budget_ms is None:
        p95_budget_ms = latency_budget_ms(load_alert_config(settings))
    return SmokeExpectations(
        version=expected,
        categories=known_categories(client, settings.model_name, expected) if expected else None,
        auto_apply=auto_apply,
        auto_apply_threshold=settings.auto_apply_threshold,
        p95_budget_ms=p95_budget_ms,
        latency_calls=latency_calls,
    )
