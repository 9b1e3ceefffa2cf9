"""One settings object, read from the environment and an optional ``.env``.

It is built once by the entry point (CLI, app factory, MLproject step) and
passed down; nothing here runs at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration of every BoltIT component."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # Project variables.
    state_dir: Path = Field(Path(".boltit"), validation_alias="BOLTIT_STATE_DIR")
    model_name: str = Field("ticket-classifier", validation_alias="BOLTIT_MODEL_NAME")
    database_url_override: str | None = Field(None, validation_alias="BOLTIT_DATABASE_URL")
    admin_token: SecretStr | None = Field(None, validation_alias="BOLTIT_ADMIN_TOKEN")
    auto_apply_threshold: float = Field(
        0.75, ge=0.0, le=1.0, validation_alias="BOLTIT_AUTO_APPLY_THRESHOLD"
    )
    experiment_name: str = Field("ticket-classifier", validation_alias="BOLTIT_EXPERIMENT")
    artifact_root_override: str | None = Field(None, validation_alias="BOLTIT_ARTIFACT_ROOT")
    artifact_bucket: str | None = Field(None, validation_alias="BOLTIT_ARTIFACT_BUCKET")

    # The runbook's own switch; only the first value of the persisted flag comes from here.
    auto_apply_enabled: bool = Field(True, validation_alias="AUTO_APPLY_ENABLED")

    # MLflow's own variables, honoured as MLflow defines them.
    tracking_uri_override: str | None = Field(None, validation_alias="MLFLOW_TRACKING_URI")
    registry_uri_override: str | None = Field(None, validation_alias="MLFLOW_REGISTRY_URI")
    s3_endpoint_url: str | None = Field(None, validation_alias="MLFLOW_S3_ENDPOINT_URL")

    # Serving.
    poll_interval_seconds: float = Field(
        1.0, gt=0.0, le=60.0, validation_alias="BOLTIT_POLL_INTERVAL"
    )
    webhook_secret: SecretStr | None = Field(None, validation_alias="BOLTIT_WEBHOOK_SECRET")
    flag_poll_interval_seconds: float = Field(
        0.25, gt=0.0, le=0.5, validation_alias="BOLTIT_FLAG_POLL_INTERVAL"
    )
    # First values of the shadow_enabled / canary_percent flags, as for auto-apply: the
    # database rules after that (``boltit rollout``, PUT /admin/feature-flags).
    shadow_enabled: bool = Field(False, validation_alias="BOLTIT_SHADOW_ENABLED")
    canary_percent: float = Field(0.0, ge=0.0, le=100.0, validation_alias="BOLTIT_CANARY_PERCENT")
    # May only lower the API's hard ceilings (20,000 characters, 256 tickets per batch).
    max_text_chars: int = Field(20_000, ge=1, le=20_000, validation_alias="BOLTIT_MAX_TEXT_CHARS")
    max_batch_size: int = Field(256, ge=1, le=256, validation_alias="BOLTIT_MAX_BATCH_SIZE")
    # Sub-millisecond predictions are cheaper inline than a threadpool hop (see bench/).
    predict_inline: bool = Field(True, validation_alias="BOLTIT_PREDICT_INLINE")
    # The service's budget for one single-ticket prediction; the latency gate's absolute limit.
    single_predict_budget_ms: float = Field(
        50.0, gt=0.0, le=10_000.0, validation_alias="BOLTIT_SINGLE_PREDICT_BUDGET_MS"
    )
    # Counted as the body streams in (chunked or not); 32 MiB holds a full batch of maximal
    # texts, JSON-escaped.
    max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, le=1024**3, validation_alias="BOLTIT_MAX_BODY_BYTES"
    )
    # A version whose load failed is retried after this many seconds, doubling up to the cap.
    load_retry_seconds: float = Field(
        1.0, gt=0.0, le=3600.0, validation_alias="BOLTIT_LOAD_RETRY_SECONDS"
    )
    load_retry_max_seconds: float = Field(
        60.0, gt=0.0, le=3600.0, validation_alias="BOLTIT_LOAD_RETRY_MAX_SECONDS"
    )

    # Who may call the service: named clients with scopes and hashed tokens (``boltit token``).
    clients_file: Path | None = Field(None, validation_alias="BOLTIT_CLIENTS_FILE")
    # Lets callers without a token classify, send feedback and export; never admin. Such
    # feedback is stored but the monitor ignores it.
    insecure_open: bool = Field(False, validation_alias="BOLTIT_INSECURE_OPEN")
    # Signs the /review page's session cookies; unset, a random one is kept in
    # ``<state dir>/review-secret`` (shared by the replicas that share the state folder).
    review_secret: SecretStr | None = Field(None, validation_alias="BOLTIT_REVIEW_SECRET")
    # A client that sends this share of the monitoring window's feedback within
    # ``feedback_flood_window_minutes`` (and at least ``feedback_flood_min`` labels) is reported.
    feedback_flood_share: float = Field(
        0.25, gt=0.0, le=1.0, validation_alias="BOLTIT_FEEDBACK_FLOOD_SHARE"
    )
    feedback_flood_window_minutes: float = Field(
        60.0, gt=0.0, validation_alias="BOLTIT_FEEDBACK_FLOOD_WINDOW_MINUTES"
    )
    feedback_flood_min: int = Field(100, ge=1, validation_alias="BOLTIT_FEEDBACK_FLOOD_MIN")

    # Registry. ``rollback --to V`` needs --force --reason while an incident that marked V
    # regressed (or rolled back from it) is open, or was opened or closed this many days ago.
    rollback_guard_days: float = Field(
        30.0, ge=0.0, le=3650.0, validation_alias="BOLTIT_ROLLBACK_GUARD_DAYS"
    )

    # Leader election (boltit.core.leases): a standby sync watcher or monitor takes over
    # within this many seconds of its leader's death; the leader renews every third of it.
    leader_lease_seconds: float = Field(
        15.0, ge=1.0, le=600.0, validation_alias="BOLTIT_LEADER_LEASE_SECONDS"
    )

    # Config files that make gates, alert rules and drift thresholds data.
    gates_config: Path | None = Field(None, validation_alias="BOLTIT_GATES_CONFIG")
    alerts_config: Path | None = Field(None, validation_alias="BOLTIT_ALERTS_CONFIG")
    drift_config: Path | None = Field(None, validation_alias="BOLTIT_DRIFT_CONFIG")

    # CloudWatch publishing is opt-in; the endpoint override points boto3 at a stand-in (moto).
    cloudwatch_enabled: bool = Field(False, validation_alias="BOLTIT_CLOUDWATCH_ENABLED")
    cloudwatch_namespace: str = Field(
        "BoltIT/Pilot", validation_alias="BOLTIT_CLOUDWATCH_NAMESPACE"
    )
    cloudwatch_endpoint_url: str | None = Field(
        None, validation_alias="BOLTIT_CLOUDWATCH_ENDPOINT_URL"
    )

    # Paging (boltit.monitoring.notify): incidents go to whichever channels are configured.
    slack_webhook_url: SecretStr | None = Field(None, validation_alias="BOLTIT_SLACK_WEBHOOK_URL")
    pagerduty_routing_key: SecretStr | None = Field(
        None, validation_alias="BOLTIT_PAGERDUTY_ROUTING_KEY"
    )
    pagerduty_url: str = Field(
        "https://events.pagerduty.com/v2/enqueue", validation_alias="BOLTIT_PAGERDUTY_URL"
    )
    # Short on purpose: a hanging receiver must not hold up the monitor's own actions.
    notify_timeout_seconds: float = Field(
        3.0, gt=0.0, le=30.0, validation_alias="BOLTIT_NOTIFY_TIMEOUT"
    )
    notify_attempts: int = Field(3, ge=1, le=10, validation_alias="BOLTIT_NOTIFY_ATTEMPTS")

    # Smoke tests (``boltit smoke``; the monitor after a rollback): the service and a client
    # token with the classify scope.
    smoke_url: str = Field("http://127.0.0.1:8000", validation_alias="BOLTIT_SMOKE_URL")
    smoke_token: SecretStr | None = Field(None, validation_alias="BOLTIT_SMOKE_TOKEN")

    @field_validator("model_name")
    @classmethod
    def _model_name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("BOLTIT_MODEL_NAME must not be empty")
        return value.strip()

    @property
    def database_url(self) -> str:
        """Where the ticket store, audit history, flags and incidents live."""
        if self.database_url_override:
            return normalise_database_url(self.database_url_override)
        return f"sqlite:///{self.state_dir.resolve() / 'boltit.db'}"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: ``MLFLOW_TRACKING_URI`` or a SQLite file in the state folder."""
        return self.tracking_uri_override or f"sqlite:///{self.state_dir.resolve() / 'mlflow.db'}"

    @property
    def registry_uri(self) -> str:
        """MLflow registry URI: ``MLFLOW_REGISTRY_URI`` or the tracking URI."""
        return self.registry_uri_override or self.tracking_uri

    @property
    def artifact_root(self) -> str:
        """Artifact location for the experiment this project creates."""
        return self.artifact_root_override or (self.state_dir.resolve() / "artifacts").as_uri()

    @property
    def clients_path(self) -> Path:
        """The clients file: ``BOLTIT_CLIENTS_FILE`` or ``clients.json`` in the state folder."""
        return self.clients_file or self.state_dir / "clients.json"

    def admin_token_value(self) -> str | None:
        """The admin token, or None when admin writes must be refused."""
        if self.admin_token is None or not self.admin_token.get_secret_value():
            return None
        return self.admin_token.get_secret_value()


def normalise_database_url(url: str) -> str:
    """Point bare ``postgresql://`` URLs at psycopg 3, the driver this project installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_settings(**overrides: object) -> Settings:
    """Build the settings once; keyword overrides win over the environment."""
    return Settings(**overrides)  # type: ignore[arg-type]
