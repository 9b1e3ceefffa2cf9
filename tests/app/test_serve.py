"""The composition root hands serving the monitor's alert rules; serving alone has none."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from uvicorn.importer import import_from_string

from boltit.app.serve import FACTORY, service_app, worker_app
from boltit.core.settings import Settings
from boltit.serving.app import create_app

pytestmark = pytest.mark.integration  # each app opens an MLflow store

ALERT_SERIES = "boltit_alert_level{"


def _metrics(app: object) -> str:
    with TestClient(app) as http:  # type: ignore[arg-type]
        answer = http.get("/metrics")
    assert answer.status_code == 200, answer.text
    return answer.text


@pytest.fixture
def open_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"insecure_open": True})


def test_serve_wires_the_alert_rules_into_metrics(open_settings: Settings) -> None:
    text = _metrics(service_app(open_settings))
    assert ALERT_SERIES in text
    assert 'rule="accuracy_floor"' in text
    # Serving knows nothing of monitoring: without the composition root, no alert series.
    assert ALERT_SERIES not in _metrics(create_app(open_settings))


def test_each_worker_builds_the_wired_app_from_the_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert import_from_string(FACTORY) is worker_app  # what uvicorn's workers call
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("BOLTIT_INSECURE_OPEN", "true")
    assert ALERT_SERIES in _metrics(worker_app())
