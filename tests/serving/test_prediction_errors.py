"""A classify request the service cannot answer is counted where the monitor reads errors."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.monitoring.snapshot import count_prediction_errors
from boltit.serving.app import create_app


@pytest.mark.integration  # the app follows an (empty) MLflow registry
def test_unanswered_classify_is_recorded_as_a_prediction_error(
    settings: Settings, database: Database
) -> None:
    # No version is registered, so the service has nothing to predict with.
    with TestClient(create_app(settings)) as http:
        answers = [http.post("/classify", json={"text": "printer jammed"}) for _ in range(3)]
        assert http.get("/ready").status_code == 503
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert "no model" in answers[0].json()["detail"]
    with database.session() as session:
        assert count_prediction_errors(session, model_name=settings.model_name) == 3
