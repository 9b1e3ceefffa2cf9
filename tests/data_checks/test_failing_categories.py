"""The training-data checks name the categories that fail them, and ``retrain`` says which."""

from __future__ import annotations

import pandas as pd
import pytest

from boltit.core import tickets
from boltit.core.db import Database
from boltit.core.schema import Ticket, utcnow
from boltit.core.settings import Settings
from boltit.data_checks.config import TrainingDataConfig
from boltit.data_checks.suites import run_training_data_suite
from boltit.training.generator import CATEGORIES
from tests.console_script import run_boltit
from tests.monitoring.tickets import ticket_row

PRINTER_TICKETS = [
    "the printer on floor 3 jams on every page",
    "printer queue stuck since the morning update",
    "toner warning on the reception printer again",
]


def _with_printers(frame: pd.DataFrame) -> pd.DataFrame:
    printers = pd.DataFrame({"text": PRINTER_TICKETS, "category": "Printers"})
    return pd.concat([frame[["text", "category"]], printers], ignore_index=True)


def test_per_category_checks_name_the_failing_categories(good_tickets: pd.DataFrame) -> None:
    config = TrainingDataConfig().with_labels(CATEGORIES)
    clean = run_training_data_suite(good_tickets[["text", "category"]], config=config)
    assert clean.success and all(o.categories == () for o in clean.outcomes)

    report = run_training_data_suite(_with_printers(good_tickets), config=config)
    failed = {o.name: o for o in report.failures}
    assert set(failed) == {"labels_allowed", "min_rows_per_class", "class_imbalance_ratio"}
    for outcome in failed.values():
        assert outcome.categories == ("Printers",)
    assert failed["min_rows_per_class"].label == "min_rows_per_class (Printers)"
    assert report.to_dict()["outcomes"][0]["categories"] == []
    by_name = {o["name"]: o for o in report.to_dict()["outcomes"]}
    assert by_name["labels_allowed"]["categories"] == ["Printers"]


def _store_printer_feedback(database: Database) -> None:
    with database.session() as session:
        for text in PRINTER_TICKETS:
            row = ticket_row(
                text=text, category="Hardware", confidence=0.6, version="1", created_at=utcnow()
            )
            session.add(Ticket(**row))
            session.flush()
            tickets.add_feedback(session, row["id"], category="Printers", new_category=True)


@pytest.mark.integration  # retrain opens the MLflow store before it refuses
@pytest.mark.integration  # `retrain` opens the MLflow store before it refuses
def test_retrain_refusal_names_the_category(
    settings: Settings,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _store_printer_feedback(database)
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("COLUMNS", "250")
    code, _, err = run_boltit(monkeypatch, capsys, "retrain", "--rows", "1600", "--no-register")
    assert code == 1, err
    assert "min_rows_per_class (Printers)" in err
    assert "class_imbalance_ratio (Printers)" in err
    assert len(err.strip().splitlines()) == 1, err
