"""Shadow evidence: a challenger scored beside Production on live tickets, read back for
``boltit shadow report`` and judged by ``validate``'s ``shadow_*`` gates.

Tickets are served by the real v1 model and committed by serving's ticket writer, whose
``after_commit`` hands them to serving's ``ShadowScorer`` running a real challenger version
(as ``ServingService`` wires them); labels arrive through ``add_feedback`` from agents.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from boltit.app.cli import build_app
from boltit.core.db import Database
from boltit.data_checks.shadow import shadow_evidence
from boltit.registry.gate_config import parse_gate_config
from boltit.registry.gates import shadow_results
from boltit.serving.follower import LoadedModel
from boltit.serving.predictor import load_predictor
from boltit.serving.ticket_writer import ShadowScorer, ticket_writer
from boltit.training.generator import generate_tickets
from tests.monitoring.conftest import force_promote
from tests.monitoring.tickets import send_feedback, ticket_row

MODEL = "ticket-classifier"


def _serve_with_shadow(
    database: Database, *, challenger: str, n: int, labelled: int, seed: int = 21
) -> dict[str, Any]:
    """``n`` tickets answered by v1 and shadow-scored by ``challenger``; the first ``labelled``
    get their true category from an agent. Returns what each version said, for the checks."""
    production = load_predictor(f"models:/{MODEL}/1")
    shadow_model = LoadedModel(
        name=MODEL,
        version=challenger,
        alias="challenger",
        run_id=None,
        loaded_at=datetime.now(UTC),
        predictor=load_predictor(f"models:/{MODEL}/{challenger}"),
    )
    tickets = generate_tickets(n, seed=seed, ambiguity=0.05)
    texts, truth = tickets["text"].tolist(), tickets["category"].tolist()
    served = production.predict(texts)
    start = datetime.now(UTC) - timedelta(hours=2)
    rows = [
        ticket_row(
            text=text,
            category=answer.category,
            confidence=answer.confidence,
            version="1",
            created_at=start + timedelta(seconds=i),
        )
        for i, (text, answer) in enumerate(zip(texts, served, strict=True))
    ]
    scorer = ShadowScorer(database, challenger=lambda: shadow_model)
    scorer.start()

    async def write() -> None:
        writer = ticket_writer(database, after_commit=scorer.submit)
        writer.start()
        try:
            for first in range(0, n, 50):
                await writer.write(rows[first : first + 50])
        finally:
            writer.stop()

    try:
        asyncio.run(write())
        deadline = time.monotonic() + 60
        while scorer.scored < n and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scorer.stop()
    assert scorer.scored == n
    send_feedback(database, [(rows[i]["id"], truth[i]) for i in range(labelled)])
    return {
        "truth": np.array(truth, dtype=object),
        "champion": np.array([a.category for a in served], dtype=object),
        "challenger": np.array(
            [a.category for a in shadow_model.predictor.predict(texts)], dtype=object
        ),
        "labelled": labelled,
    }


def test_report_figures_and_gates_fail_on_a_worse_challenger(
    trained: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, client, database, _ = trained
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("COLUMNS", "200")
    force_promote(settings, client, database, "1")
    said = _serve_with_shadow(database, challenger="2", n=300, labelled=150)

    result = CliRunner().invoke(build_app(), ["shadow", "report", "--days", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    agree = said["champion"] == said["challenger"]
    first = slice(0, said["labelled"])
    assert report["version"] == "2" and report["champions"] == {"1": 300}
    assert report["rows"] == 300 and report["agreed"] == int(agree.sum())
    low, high = report["agreement_interval"]
    assert low < report["agreement"] < high
    assert report["labelled"] == 150
    champion_accuracy = float((said["champion"][first] == said["truth"][first]).mean())
    challenger_accuracy = float((said["challenger"][first] == said["truth"][first]).mean())
    assert report["champion_accuracy"] == pytest.approx(champion_accuracy)
    assert report["challenger_accuracy"] == pytest.approx(challenger_accuracy)
    assert report["accuracy_drop"] == pytest.approx(champion_accuracy - challenger_accuracy)
    assert report["accuracy_drop_interval"][0] > 0  # v2 learned mostly wrong labels
    per_category = {c["category"]: c for c in report["categories"]}
    for category in set(said["champion"]):
        mine = said["champion"] == category
        assert per_category[category]["rows"] == int(mine.sum())
        assert per_category[category]["disagreed"] == int((mine & ~agree).sum())
    assert set(report["confidence"]["challenger"]) == {"q05", "q25", "q50", "q75", "q95"}
    table = CliRunner().invoke(build_app(), ["shadow", "report", "--days", "1"])
    assert "Disagreement by the champion's category" in table.output
    assert "shadow_accuracy_drop" in table.output

    from boltit.registry.validate import validate

    verdict = validate(
        client=client,
        database=database,
        settings=settings,
        name=MODEL,
        actor="test",
        version="2",
        mark=False,
    )
    gates = {r.name: r for r in verdict.report.results}
    assert gates["shadow_agreement"].passed is False
    assert gates["shadow_accuracy_drop"].passed is False
    assert gates["shadow_accuracy_drop"].observed == pytest.approx(report["accuracy_drop"])
    tags = client.get_model_version(MODEL, "2").tags
    assert tags["gate.shadow_agreement"].startswith("failed (observed ")
    assert tags["gate.shadow_accuracy_drop"].startswith("failed (observed ")
    assert verdict.report_artifact is not None
    import mlflow

    document = mlflow.artifacts.load_dict(verdict.report_artifact)
    assert document["shadow"]["rows"] == 300 and document["shadow"]["labelled"] == 150


def test_gates_pass_an_equal_challenger(trained: Any) -> None:
    settings, client, database, _ = trained
    force_promote(settings, client, database, "1")
    _serve_with_shadow(database, challenger="3", n=300, labelled=150)
    with database.session() as session:
        evidence = shadow_evidence(
            session, since=datetime.now(UTC) - timedelta(days=1), version="3", champion="1"
        )
    results = {r.name: r for r in shadow_results(evidence, parse_gate_config())}
    assert evidence.rows == 300 and evidence.labelled == 150
    assert results["shadow_agreement"].passed is True
    assert results["shadow_accuracy_drop"].passed is True
    assert results["shadow_agreement"].interval is not None
    # Another champion's tickets are not this comparison's evidence.
    with database.session() as session:
        other = shadow_evidence(
            session, since=datetime.now(UTC) - timedelta(days=1), version="3", champion="2"
        )
    assert other.rows == 0


def test_gates_skip_below_min_rows_and_never_pass(trained: Any) -> None:
    settings, client, database, _ = trained
    force_promote(settings, client, database, "1")
    _serve_with_shadow(database, challenger="2", n=60, labelled=20)
    with database.session() as session:
        evidence = shadow_evidence(session, since=datetime.now(UTC) - timedelta(days=1))
    assert evidence.version == "2"  # the newest shadowed version, when none is named
    config = parse_gate_config(
        {"gates": {"shadow_agreement": {"min_rows": 61}, "shadow_accuracy_drop": {"min_rows": 21}}}
    )
    results = {r.name: r for r in shadow_results(evidence, config)}
    assert results["shadow_agreement"].passed is None
    assert results["shadow_agreement"].note.startswith("skipped: 60 shadow rows < min 61")
    assert results["shadow_accuracy_drop"].passed is None
    assert results["shadow_accuracy_drop"].note.startswith(
        "skipped: 20 labelled shadow rows < min 21"
    )
    assert not any(r.blocking for r in results.values())
    # Enough rows once the minimum is met: the same evidence is judged (and fails).
    judged = parse_gate_config(
        {"gates": {"shadow_agreement": {"min_rows": 60}, "shadow_accuracy_drop": {"min_rows": 20}}}
    )
    assert {r.passed for r in shadow_results(evidence, judged)} == {False}


def test_report_without_shadow_rows_says_so(
    settings: Any, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(settings.state_dir))
    empty = CliRunner().invoke(build_app(), ["shadow", "report"])
    assert empty.exit_code == 0, empty.output
    assert "No shadow predictions of any version in the last 14 days." in empty.output
    named = CliRunner().invoke(build_app(), ["shadow", "report", "--version", "7", "--json"])
    assert json.loads(named.output)["rows"] == 0
    bad = CliRunner().invoke(build_app(), ["shadow", "report", "--days", "0"])
    assert "--days must be at least 1" in str(bad.exception)
