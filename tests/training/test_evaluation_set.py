"""The model's evaluation set: fixed by the first training, excluded and grown by later ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.core import evaluation_sets as es
from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.settings import Settings
from boltit.core.tracking import configure_mlflow
from boltit.training.data import from_generator, validate_frame
from boltit.training.generator import generate_tickets
from boltit.training.holdout import split_arrivals
from boltit.training.model import ModelConfig
from boltit.training.train import TrainConfig, TrainRequest, TrainResult, train
from tests.console_script import Boltit
from tests.training.conftest import settings_under

FAST = TrainConfig(model=ModelConfig(seed=3), latency_samples=10)
ROWS = 1500


@dataclass
class Lineage:
    settings: Settings
    client: MlflowClient
    first: TrainResult
    second: TrainResult  # same rows again plus 300 others: the set's rows are excluded
    grown: TrainResult  # with 200 new arrivals for the set
    arrivals: pd.DataFrame
    first_set: es.EvaluationSet
    first_tags: dict[str, str]  # the registered model's tags right after the first run


@pytest.fixture(scope="module")
def lineage(tmp_path_factory: pytest.TempPathFactory) -> Lineage:
    settings = settings_under(tmp_path_factory.mktemp("evaluation-set") / "state")
    client = configure_mlflow(settings)
    first = train(
        TrainRequest(dataset=from_generator(ROWS, seed=1), config=FAST),
        settings=settings,
        client=client,
    )
    first_set = es.read_evaluation_set(client, settings.model_name)
    assert first_set is not None
    first_tags = dict(client.get_registered_model(settings.model_name).tags)
    again = pd.concat(
        [generate_tickets(ROWS, seed=1), generate_tickets(300, seed=2)], ignore_index=True
    )
    second = train(
        TrainRequest(dataset=validate_frame(again, source="again", name="again"), config=FAST),
        settings=settings,
        client=client,
    )
    arrivals = generate_tickets(200, seed=3).drop(columns=["created_at", "priority"])
    grown = train(
        TrainRequest(
            dataset=from_generator(ROWS, seed=1), config=FAST, evaluation_additions=arrivals
        ),
        settings=settings,
        client=client,
    )
    return Lineage(settings, client, first, second, grown, arrivals, first_set, first_tags)


def _inputs(client: MlflowClient, run_id: str) -> dict[str, dict[str, str]]:
    run = client.get_run(run_id)
    assert run.inputs is not None
    found = {}
    for dataset_input in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in dataset_input.tags}
        found[tags["mlflow.data.context"]] = tags | {"digest": dataset_input.dataset.digest}
    return found


def _digests(client: MlflowClient, run_id: str) -> set[str]:
    digests = es.training_digests(client, run_id)
    assert digests is not None
    return digests


def test_first_training_fixes_a_stratified_set_the_model_points_at(lineage: Lineage) -> None:
    client, first, tags = lineage.client, lineage.first, lineage.first_tags
    assert tags[es.TAG_URI] == f"runs:/{first.run_id}/{es.EVALUATION_SET_ARTIFACT}"
    assert tags[es.TAG_ROWS] == str(first.evaluation_rows) == "300"
    assert tags[es.TAG_REVISION] == "1"
    assert tags[es.TAG_DIGEST] == first.evaluation_digest == lineage.first_set.digest
    assert first.evaluation_fixed and first.evaluation_added == 300

    frame = lineage.first_set.frame
    assert {"text", "category", "priority", "digest", "added_at"} <= set(frame.columns)
    assert frame["digest"].is_unique
    # Stratified: every category holds about the same share in the set as in the data.
    given = generate_tickets(ROWS, seed=1)["category"].value_counts(normalize=True)
    held = frame["category"].value_counts(normalize=True)
    assert (held - given).abs().max() < 0.01

    run = client.get_run(first.run_id)
    assert run.data.params["eval_rows"] == "300"
    assert run.data.params["train_rows"] == str(first.train_rows) == "1200"
    assert run.data.params["excluded_evaluation_rows"] == "0"
    assert _digests(client, first.run_id).isdisjoint(lineage.first_set.digests)
    assert len(_digests(client, first.run_id)) == 1200
    description = client.get_model_version(lineage.settings.model_name, "1").description
    assert "Fitted on 1,200 of them (0 excluded" in description
    assert "measured on the model's evaluation set (revision 1, 300 rows, digest " in description


def test_every_run_logs_its_training_rows_and_the_evaluation_set_as_inputs(
    lineage: Lineage,
) -> None:
    for result in (lineage.first, lineage.second, lineage.grown):
        inputs = _inputs(lineage.client, result.run_id)
        assert set(inputs) == {"training", "evaluation"}
        assert inputs["evaluation"]["content_hash"] == result.evaluation_digest
        assert inputs["evaluation"]["digest"] == result.evaluation_digest[:16]
        assert inputs["training"]["given_data_hash"] == result.data_hash
    first_inputs = _inputs(lineage.client, lineage.first.run_id)
    second_inputs = _inputs(lineage.client, lineage.second.run_id)
    assert first_inputs["evaluation"]["uri"] == second_inputs["evaluation"]["uri"]


def test_later_runs_exclude_the_set_rows_and_say_how_many(lineage: Lineage) -> None:
    client, second = lineage.client, lineage.second
    # All 300 rows of the set came back in the given data; seed 2's tickets differ.
    assert second.excluded_evaluation_rows == 300
    assert second.train_rows == ROWS + 300 - 300
    run = client.get_run(second.run_id)
    assert run.data.params["excluded_evaluation_rows"] == "300"
    assert run.data.metrics["excluded_evaluation_rows"] == 300.0
    assert run.data.params["eval_rows"] == "300"
    assert not second.evaluation_fixed and second.evaluation_added == 0
    assert second.evaluation_digest == lineage.first_set.digest
    assert _digests(client, second.run_id).isdisjoint(lineage.first_set.digests)


def test_additions_make_a_new_revision_and_keep_the_old_one(lineage: Lineage) -> None:
    client, name, grown = lineage.client, lineage.settings.model_name, lineage.grown
    assert grown.evaluation_added == 200 and grown.evaluation_revision == 2
    current = es.read_evaluation_set(client, name)
    assert current is not None
    assert current.uri == f"runs:/{grown.run_id}/{es.EVALUATION_SET_ARTIFACT}"
    assert current.rows == 500 == grown.evaluation_rows
    assert current.revision == 2
    assert lineage.first_set.digests <= current.digests
    assert set(es.row_digests(lineage.arrivals["text"])) <= current.digests
    # The arrivals have no priority: the set keeps the column, with gaps.
    assert current.frame["priority"].isna().sum() == 200
    old = es._read_parquet(client, lineage.first_set.uri, what="revision 1")
    assert es.frame_digest(old) == lineage.first_set.digest
    run = client.get_run(grown.run_id)
    assert run.data.params["eval_rows"] == "500"
    assert "priority_accuracy" in run.data.metrics  # scored on the rows that have one


def test_run_cutoff_is_the_newest_training_row(lineage: Lineage) -> None:
    client, first = lineage.client, lineage.first
    run = client.get_run(first.run_id)
    cutoff = datetime.fromisoformat(run.data.tags[es.TAG_TRAINING_CUTOFF])
    frame = generate_tickets(ROWS, seed=1)
    trained = frame[~frame["text"].map(es.row_digest).isin(lineage.first_set.digests)]
    assert cutoff == trained["created_at"].max().to_pydatetime()
    assert es.training_cutoff(client, first.run_id) == cutoff


def test_without_dates_the_cutoff_is_the_run_start(
    settings: Settings, mlflow_client: MlflowClient
) -> None:
    before = datetime.now(UTC)
    frame = generate_tickets(1200, seed=5).drop(columns=["created_at"])
    result = train(
        TrainRequest(
            dataset=validate_frame(frame, source="undated", name="undated"),
            config=FAST,
            register=False,
        ),
        settings=settings,
        client=mlflow_client,
    )
    assert result.training_cutoff is not None
    assert before <= result.training_cutoff <= datetime.now(UTC)
    # Nothing registered: the run measured on its own split and pointed no model at it.
    assert mlflow_client.search_registered_models() == []


def test_training_only_on_evaluation_rows_is_refused(
    settings: Settings, mlflow_client: MlflowClient
) -> None:
    train(
        TrainRequest(dataset=from_generator(1200, seed=6), config=FAST),
        settings=settings,
        client=mlflow_client,
    )
    held = es.read_evaluation_set(mlflow_client, settings.model_name)
    assert held is not None
    only_held = validate_frame(held.frame, source="held-out rows", name="held")
    with pytest.raises(BadInputError, match="after excluding the 240 rows that the evaluation"):
        train(
            TrainRequest(dataset=only_held, config=FAST, allow_failing_data=True),
            settings=settings,
            client=mlflow_client,
        )


def test_split_arrivals_sends_a_stratified_share_after_the_cutoff() -> None:
    frame = generate_tickets(1000, seed=8)
    cutoff = frame["created_at"].sort_values().iloc[499].to_pydatetime()
    arrivals = split_arrivals(frame, cutoff=cutoff, test_size=0.2, seed=1)
    assert arrivals.after_cutoff == 500
    assert len(arrivals.evaluation) == 100 and len(arrivals.training) == 900
    assert (arrivals.evaluation["created_at"] > cutoff).all()
    assert arrivals.evaluation["category"].nunique() == frame["category"].nunique()
    none = split_arrivals(frame, cutoff=None, test_size=0.2, seed=1)
    assert none.evaluation.empty and len(none.training) == 1000
    few = split_arrivals(
        frame, cutoff=frame["created_at"].max() - timedelta(seconds=1), test_size=0.2, seed=1
    )
    assert few.after_cutoff == 1 and few.evaluation.empty  # a lone arrival trains
    # Arrivals the serving version already trained on never become evaluation rows.
    late = frame[frame["created_at"] > cutoff]
    seen = set(es.row_digests(late["text"].head(300)))
    guarded = split_arrivals(frame, cutoff=cutoff, test_size=0.2, seed=1, trained_on=seen)
    assert guarded.after_cutoff == 500 and guarded.already_trained == 300
    assert len(guarded.evaluation) == 40 and len(guarded.training) == 960
    assert not set(es.row_digests(guarded.evaluation["text"])) & seen


def test_retrain_sends_new_arrivals_to_the_evaluation_set(
    boltit: Boltit, settings: Settings, mlflow_client: MlflowClient, tmp_path: Path
) -> None:
    from tests.monitoring.tickets import send_feedback, store_tickets, ticket_row

    base = tmp_path / "base.csv"
    # Two days before now, so the tickets served in the last hours all arrive after v1's
    # cut-off whatever the time of day the test runs.
    started = datetime.now(UTC) - timedelta(days=32)
    generate_tickets(1200, seed=1, start=started).to_csv(base, index=False)
    code, out, err = boltit("train", "--data", str(base))
    assert code == 0, err
    assert "evaluation set fixed by this run: 240 held-out tickets" in out
    mlflow_client.set_registered_model_alias(settings.model_name, "Production", "1")
    cutoff = es.serving_cutoff(mlflow_client, settings.model_name)
    assert cutoff is not None and cutoff[0] == "1"

    # 250 tickets served and labelled since: after v1's cut-off (its data ends two days ago).
    database = Database(settings.database_url)
    try:
        served = generate_tickets(250, seed=21)
        now = datetime.now(UTC)
        rows = [
            ticket_row(
                text=t.text,
                category=t.category,
                confidence=0.9,
                version="1",
                created_at=now - timedelta(minutes=250 - i),
            )
            for i, t in enumerate(served.itertuples())
        ]
        store_tickets(database, rows)
        send_feedback(database, [(r["id"], r["category"]) for r in rows])
    finally:
        database.dispose()

    code, out, err = boltit("retrain", "--data", str(base), "--include-recent-days", "90")
    assert code == 0, err
    assert "ticket store: 250 labelled tickets from the last 90 days" in out
    assert "250 arrived after v1's training cut-off" in out
    assert "50 join the evaluation set, 200 store tickets train" in out
    assert "revision 2: 290 tickets (+50 new arrivals)" in out
    assert "excluded 240 given rows it holds" in out
    current = es.read_evaluation_set(mlflow_client, settings.model_name)
    assert current is not None and current.rows == 290 and current.revision == 2
    v2 = mlflow_client.get_model_version(settings.model_name, "2")
    run = mlflow_client.get_run(v2.run_id)
    assert run.data.params["train_rows"] == str(960 + 200)
    cut = datetime.fromisoformat(run.data.tags[es.TAG_TRAINING_CUTOFF])
    assert cut > now - timedelta(minutes=5)  # the store's newest training ticket
