"""Alert rules: defaults from the runbook, overrides, and verdicts on stored tickets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.settings import Settings
from boltit.monitoring import rules, snapshot
from boltit.monitoring.status import store_evaluations
from tests.monitoring.tickets import add_tickets


def test_defaults_are_the_runbook_thresholds() -> None:
    config = rules.load_alert_config()
    expected = {
        "accuracy_floor": ("below", 0.90),
        "prediction_error_rate": ("above", 0.05),
        "latency_p95_seconds": ("above", 3.0),
    }
    for name, (direction, critical) in expected.items():
        rule = config.rule(name)
        assert (rule.direction, rule.critical, rule.reference) == (direction, critical, "fixed")
        # "below 0.90" and "exceeds 5%" are strict: the threshold itself is not critical.
        assert rule.grade(critical, 10**6) is not rules.Level.critical
        beyond = critical - 0.001 if direction == "below" else critical + 0.001
        assert rule.grade(beyond, 10**6) is rules.Level.critical
    assert config.window_days == 7
    # The floor never acts alone on a model that performs as it proved.
    assert config.rule("accuracy_floor").incident == rules.BELOW_PROVEN
    # Rules that compared with fixed numbers are relative to the evaluation set or report-only.
    assert config.rule("mean_confidence").reference == rules.EVALUATION
    assert config.rule("category_accuracy").reference == rules.EVALUATION
    assert config.rule("category_accuracy").incident is False
    assert config.rule("confidence_anomaly").incident is False
    assert config.rule("confidence_anomaly").metric == "confidence_ks"
    assert {config.rule(n).incident for n in ("prediction_error_rate", "latency_p95_seconds")} == {
        False
    }
    assert config.sequential.threshold == 9.0 and config.sequential.proven_confidence == 0.90


def test_grading_honours_direction_levels_and_sample_floor() -> None:
    rule = rules.load_alert_config().rule("accuracy_floor")
    assert rule.grade(0.95, 100) is rules.Level.ok
    assert rule.grade(0.91, 100) is rules.Level.warning
    assert rule.grade(0.80, 100) is rules.Level.critical
    assert rule.grade(0.10, rule.min_samples - 1) is rules.Level.no_data
    latency = rules.load_alert_config().rule("latency_p95_seconds")
    assert latency.grade(3.5, 100) is rules.Level.critical
    assert latency.grade(2.5, 100) is rules.Level.warning


def test_relative_rules_grade_against_the_evaluation_figure() -> None:
    rule = rules.load_alert_config().rule("mean_confidence")
    # A model that was 0.70 confident on its evaluation set is fine at 0.68 live ...
    assert rule.grade(0.68, 100, reference=0.70) is rules.Level.ok
    assert rule.limits(0.70) == pytest.approx((0.65, 0.60))
    # ... and one that was 0.95 confident is not.
    assert rule.grade(0.84, 100, reference=0.95) is rules.Level.critical
    assert rule.grade(0.89, 100, reference=0.95) is rules.Level.warning
    # Nothing to be relative to: no verdict at all.
    assert rule.grade(0.10, 100, reference=None) is rules.Level.no_data


def test_an_override_file_replaces_one_rule_and_keeps_the_rest(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "rules:\n  - name: accuracy_floor\n    warning: 0.97\n    critical: 0.95\n"
        "sequential:\n  threshold: 7.5\n"
    )
    config = rules.load_alert_config(settings.model_copy(update={"alerts_config": path}))
    assert config.rule("accuracy_floor").critical == 0.95
    assert config.rule("accuracy_floor").min_samples == 50  # inherited from the default
    assert config.rule("accuracy_floor").incident == rules.BELOW_PROVEN
    assert config.rule("mean_confidence").critical == 0.10
    assert config.sequential.threshold == 7.5
    assert config.sequential.proven_confidence == 0.90


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: [", "not valid YAML"),
        ("- a list", "mapping"),
        (
            "rules:\n  - name: x\n    metric: nope\n    warning: 1\n    critical: 1\n",
            "unknown metric",
        ),
        (
            "rules:\n  - name: accuracy_floor\n    warning: 0.8\n    critical: 0.9\n",
            "critical threshold must be beyond",
        ),
        (
            "rules:\n  - name: mean_confidence\n    warning: 0.2\n    critical: 0.1\n",
            "critical must be >= warning",
        ),
        (
            "rules:\n  - name: latency_p95_seconds\n    reference: evaluation\n",
            "has no evaluation-set figure",
        ),
        ("rules:\n  - name: latency_p95_seconds\n    incident: true\n", "only alert"),
        ("rules:\n  - name: mean_confidence\n    incident: maybe\n", "incident must be"),
        ("sequential:\n  drop: 0.9\n", "drop"),
        ("sequential:\n  min_baseline_samples: 200\n", "unknown sequential setting"),
        ("sequential:\n  proven_confidence: 1.2\n", "proven_confidence"),
    ],
)
def test_a_bad_override_file_is_refused_with_the_reason(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=problem):
        rules.load_alert_config(path=path)


def test_a_missing_override_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        rules.load_alert_config(path=tmp_path / "absent.yaml")


def test_snapshot_figures_are_computed_from_the_frame() -> None:
    frame = pd.DataFrame(
        {
            "category": ["A", "A", "B", "B", "C"],
            "feedback_category": ["A", "B", "B", None, "A"],
            "confidence": [0.9, 0.8, 0.7, 0.6, 0.5],
            "latency_ms": [10.0, 20.0, 30.0, 40.0, 5000.0],
            "auto_applied": [True, True, False, False, False],
        }
    )
    figures = snapshot.compute_snapshot(frame, window_days=7, errors=1, recent_tickets=0)
    assert figures.tickets == 5 and figures.labelled == 4 and figures.correct == 2
    assert figures.accuracy == 0.5
    assert figures.mean_confidence == pytest.approx(0.7)
    assert figures.error_rate == pytest.approx(1 / 6)
    assert figures.auto_apply_rate == pytest.approx(0.4)
    assert figures.latency_p95_seconds == pytest.approx(4.008, rel=1e-3)
    assert figures.category_accuracy["A"].accuracy == 0.5  # truth A: one right, one wrong
    assert figures.category_accuracy["B"].accuracy == 0.5
    assert figures.low_confidence == 3


def _verdicts(evaluations: list[rules.Evaluation]) -> dict[str, rules.Level]:
    return {e.label: e.level for e in evaluations}


def _check_store_verdicts(settings: Settings, database: Database) -> None:
    config = rules.load_alert_config(settings)
    start = add_tickets(database, version="1", n=300, accuracy=0.97, confidence=0.92, seed=1)
    healthy = _verdicts(
        store_evaluations(settings=settings, database=database, config=config, production="1")
    )
    assert healthy["accuracy_floor"] is rules.Level.ok
    assert healthy["latency_p95_seconds"] is rules.Level.ok
    assert healthy["confidence_anomaly"] is rules.Level.ok
    # The store alone does not know what the version showed on its evaluation set.
    assert healthy["mean_confidence"] is rules.Level.no_data

    # Version 2 serves worse and less confident tickets after version 1.
    add_tickets(
        database, version="2", n=300, accuracy=0.5, confidence=0.6, start=start, seed=2,
        latency_ms=4000.0,
    )  # fmt: skip
    evaluations = store_evaluations(
        settings=settings, database=database, config=config, production="2"
    )
    verdicts = _verdicts(evaluations)
    assert verdicts["accuracy_floor"] is rules.Level.critical
    assert verdicts["latency_p95_seconds"] is rules.Level.critical  # service: all tickets
    assert verdicts["prediction_error_rate"] is rules.Level.ok
    # Reported, but without the registry nothing here is judged an incident.
    assert not any(e.opens_incident for e in evaluations)
    floor = next(e for e in evaluations if e.rule == "accuracy_floor")
    assert "report only" in floor.describe()
    mixed = store_evaluations(settings=settings, database=database, config=config, production=None)
    assert {e.rule for e in mixed} >= {"accuracy_floor", "latency_p95_seconds"}


def test_rules_read_the_ticket_store_on_sqlite(settings: Settings, database: Database) -> None:
    _check_store_verdicts(settings, database)


@pytest.mark.postgres
def test_rules_read_the_ticket_store_on_postgres(settings: Settings, postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        _check_store_verdicts(settings, database)
    finally:
        database.dispose()


def test_failed_predictions_recorded_by_serving_count_as_errors(
    settings: Settings, database: Database
) -> None:
    from boltit.core import audit

    add_tickets(database, version="1", n=90, accuracy=0.95)
    with database.session() as session:
        for _ in range(10):
            audit.record(session, action=snapshot.PREDICTION_ERROR_ACTION, actor="replica-1")
    config = rules.load_alert_config(settings)
    evaluations = store_evaluations(
        settings=settings, database=database, config=config, production="1"
    )
    error_rate = next(e for e in evaluations if e.rule == "prediction_error_rate")
    assert error_rate.value == pytest.approx(0.10)
    assert error_rate.level is rules.Level.critical
