"""GX Data Docs are built under the given folder, one validation page per suite batch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from boltit.data_checks.suites import run_prediction_log_suite, run_training_data_suite


def test_training_suite_builds_data_docs(tmp_path: Path, good_tickets: pd.DataFrame) -> None:
    bad = pd.concat([good_tickets, good_tickets.head(300)], ignore_index=True)

    report = run_training_data_suite(bad, data_docs_dir=tmp_path / "data_docs")

    assert report.data_docs == (tmp_path / "data_docs" / "index.html").resolve()
    index = report.data_docs.read_text()
    assert "training_data" in index and "training_data_classes" in index
    pages = {
        p.parent.parent.parent.name: p
        for p in (tmp_path / "data_docs").rglob("validations/*/*/*/*.html")
    }
    assert set(pages) == {"training_data", "training_data_classes"}
    rows_page = pages["training_data"].read_text()
    assert "duplicate_rate" not in report.to_dict()["outcomes"][0]["name"]
    assert "repeat an earlier ticket" in rows_page  # our description, shown in the docs
    assert "Failed" in rows_page or "failed" in rows_page
    assert "Every category has at least 50 tickets." in pages["training_data_classes"].read_text()


def test_prediction_log_docs_accumulate_in_one_site(tmp_path: Path) -> None:
    log = pd.DataFrame(
        {
            "model_version": ["1"] * 3,
            "category": ["Hardware"] * 3,
            "confidence": [0.9, 0.8, 0.7],
            "latency_ms": [3.0, 4.0, 5.0],
            "created_at": pd.to_datetime(["2026-01-01"] * 3, utc=True),
        }
    )
    docs = tmp_path / "data_docs"

    run_prediction_log_suite(log, known_categories={"Hardware"}, data_docs_dir=docs)
    run_prediction_log_suite(log, known_categories={"Access"}, data_docs_dir=docs)

    runs = list(docs.rglob("validations/prediction_log/*/*/*.html"))
    assert len(runs) == 2
    assert "prediction_log" in (docs / "index.html").read_text()
