"""GX Data Docs are built under the given folder, one validation page per suite batch."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from boltit.data_checks.suites import run_prediction_log_suite, run_training_data_suite

DUPLICATES = 300
DUPLICATE_CHECK = "At most 10% of tickets repeat an earlier ticket's text"


class _ResultRows(HTMLParser):
    """(status, expectation, observed value) of every row of a validation page's tables.

    The status is the icon GX draws: ``passed`` (a check) or ``failed`` (a cross).
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, str]] = []
        self._cells: list[str] | None = None
        self._status = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "tr":
            self._cells, self._status = [], ""
        elif tag == "td" and self._cells is not None:
            self._cells.append("")
        elif tag == "i" and "fa-check-circle" in classes:
            self._status = "passed"
        elif tag == "i" and "fa-times" in classes:
            self._status = "failed"

    def handle_data(self, data: str) -> None:
        if self._cells:
            self._cells[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._cells is not None:
            if len(self._cells) == 3 and self._status:
                _, expectation, observed = (" ".join(c.split()) for c in self._cells)
                self.rows.append((self._status, expectation, observed))
            self._cells = None


def result_rows(page: Path) -> list[tuple[str, str, str]]:
    parser = _ResultRows()
    parser.feed(page.read_text())
    return parser.rows


def test_training_suite_builds_data_docs(tmp_path: Path, good_tickets: pd.DataFrame) -> None:
    bad = pd.concat([good_tickets, good_tickets.head(DUPLICATES)], ignore_index=True)
    rows = len(bad)

    report = run_training_data_suite(bad, data_docs_dir=tmp_path / "data_docs")

    assert report.data_docs == (tmp_path / "data_docs" / "index.html").resolve()
    index = report.data_docs.read_text()
    assert "training_data" in index and "training_data_classes" in index
    pages = {
        p.parent.parent.parent.name: p
        for p in (tmp_path / "data_docs").rglob("validations/*/*/*/*.html")
    }
    assert set(pages) == {"training_data", "training_data_classes"}
    # The planted copies, and only they, fail the suite: 300 of 1,900 rows repeat a text.
    summary = report.to_dict()
    assert summary["failed"] == ["duplicate_rate"]
    (duplicates,) = (o for o in summary["outcomes"] if o["name"] == "duplicate_rate")
    assert duplicates["value"] * rows == pytest.approx(DUPLICATES)

    # The page shows that one expectation failed, in our words, with the share of unique
    # texts (1,600 of 1,900) as its observed value; every other row passed.
    shown = result_rows(pages["training_data"])
    failed = [
        (expectation, observed) for status, expectation, observed in shown if status == "failed"
    ]
    assert len(failed) == 1, shown
    ((expectation, observed),) = failed
    assert expectation.startswith(DUPLICATE_CHECK), expectation
    assert observed == f"≈{(rows - DUPLICATES) / rows:.10f}", observed
    assert len(shown) >= 8 and all(s == "passed" for s, e, _ in shown if e != expectation)
    classes = result_rows(pages["training_data_classes"])
    assert ("passed", "Every category has at least 50 tickets.") in {(s, e) for s, e, _ in classes}
    assert all(status == "passed" for status, _, _ in classes), classes


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
