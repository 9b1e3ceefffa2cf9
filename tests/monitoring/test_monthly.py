"""``boltit report monthly`` on real stores: tickets through serving's writer, labels through
``add_feedback``, promotions through ``promote``, incidents through the monitor's functions."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from boltit.app.cli import build_app
from boltit.core.errors import BadInputError
from boltit.core.evaluation import live_accuracy
from boltit.monitoring import incidents
from boltit.monitoring.monthly import monthly_report, parse_month
from tests.monitoring.conftest import force_promote
from tests.monitoring.tickets import add_tickets


def test_month_parsing() -> None:
    november = parse_month("2026-11")
    assert (november.start, november.end) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    december = parse_month("2026-12")
    assert december.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_month(None, today=date(2027, 1, 15)).label == "2026-12"  # last complete month
    for bad in ("2026-13", "november", "2026/11"):
        with pytest.raises(BadInputError, match="expected YYYY-MM"):
            parse_month(bad)


def test_monthly_report_per_version(
    trained: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings, client, database, _ = trained
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(settings.state_dir))
    month = parse_month(f"{datetime.now(UTC):%Y-%m}")
    force_promote(settings, client, database, "1")
    force_promote(settings, client, database, "3", reason="v3 is the quarterly retrain")
    start = month.start + timedelta(hours=1)
    add_tickets(database, version="1", n=200, accuracy=0.95, labelled=0.5, start=start, seed=1)
    add_tickets(database, version="3", n=120, accuracy=0.7, labelled=1.0, start=start, seed=2)
    # The month before: must not count, except as the drift summary's baseline.
    add_tickets(database, version="1", n=150, accuracy=0.1, start=month.start - timedelta(days=3))
    with database.session() as session:
        opened = incidents.open_incident(
            session,
            title="accuracy_7d below 0.90",
            model_name=settings.model_name,
            model_version="3",
            actor="monitor",
        )
        incidents.set_status(session, opened, status=incidents.RESOLVED, actor="alice")

    with database.session() as session:
        report = monthly_report(session, model_name=settings.model_name, month=month)
        expected = live_accuracy(session, since=month.start, until=month.end)
    by_version = {v.version: v for v in report.versions}
    assert set(by_version) == {"1", "3"}
    assert by_version["1"].tickets == 200 and by_version["3"].tickets == 120
    for version, figures in by_version.items():
        routes = [a for (v, _), a in expected.by_route.items() if v == version]
        assert figures.labelled == sum(a.labelled for a in routes) > 0
        assert figures.accuracy == pytest.approx(sum(a.correct for a in routes) / figures.labelled)
        low, high = figures.accuracy_interval or (1.0, 0.0)
        assert low < figures.accuracy < high
        assert sum(n for n, _ in figures.category_accuracy.values()) == figures.labelled
    assert by_version["3"].labelled == 120
    assert by_version["1"].accuracy > by_version["3"].accuracy
    assert [i.id for i in report.incidents_opened] == [opened.id]
    assert [i.id for i in report.incidents_resolved] == [opened.id]
    assert [(e.action, e.to_version) for e in report.changes] == [
        ("promote", "1"),
        ("promote", "3"),
    ]

    target = tmp_path / "reports" / f"{month.label}.md"
    result = CliRunner().invoke(
        build_app(),
        ["report", "monthly", "--month", month.label, "--output", str(target), "--log"],
    )
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8")
    for section in (
        f"# Model performance: {settings.model_name}, {month.label}",
        "## Versions that served",
        "## Accuracy by category",
        "## Incidents",
        "## Promotions and rollbacks",
    ):
        assert section in text and section in result.output
    v3 = by_version["3"]
    assert f"| v3 | 120 | {v3.auto_applied_share:.1%} | 120 | {v3.accuracy:.3f} |" in text
    assert "v1 -> v3 by alice" in text and "v3 is the quarterly retrain" in text
    assert "Opened: 1; resolved: 1." in text

    experiment = client.get_experiment_by_name("boltit-reports")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].data.tags["boltit.month"] == month.label
    logged = Path(
        client.download_artifacts(runs[0].info.run_id, f"monthly/{month.label}.md", str(tmp_path))
    )
    assert logged.read_text(encoding="utf-8") == text

    empty = CliRunner().invoke(build_app(), ["report", "monthly", "--month", "2020-01"])
    assert empty.exit_code == 0 and "No tickets this month." in empty.output

    # The same month as HTML: the format follows the file name; every plot is embedded.
    page_path = tmp_path / "reports" / f"{month.label}.html"
    result = CliRunner().invoke(
        build_app(), ["report", "monthly", "--month", month.label, "--output", str(page_path)]
    )
    assert result.exit_code == 0, result.output
    assert "<html" not in result.output and f"Written to {page_path}" in result.output
    page = _Page.parse(page_path.read_text(encoding="utf-8"))
    assert page.title == f"Model performance: {settings.model_name}, {month.label}"
    assert set(page.sections) == {
        "versions",
        "accuracy-over-time",
        "category-accuracy",
        "confidence",
        "auto-apply",
        "drift",
        "incidents",
        "changes",
    }
    headings = {key: section["h2"] for key, section in page.sections.items()}
    assert headings["auto-apply"] == "Auto-apply coverage and precision"
    assert headings["changes"] == "Promotions and rollbacks"
    for key in ("accuracy-over-time", "category-accuracy", "confidence", "auto-apply"):
        images = page.sections[key]["images"]
        assert len(images) == 1, key
        assert images[0].startswith("data:image/png;base64,"), key
        png = base64.b64decode(images[0].split(",", 1)[1])
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000, key
    text = page.sections["versions"]["text"]
    assert f"v3 120 {100 * v3.auto_applied_share:.1f}% 120 {v3.accuracy:.3f}" in text
    auto_apply = page.sections["auto-apply"]["text"]
    for figures in by_version.values():
        assert figures.auto_applied_labelled > 0 and figures.auto_applied_precision is not None
        assert f"v{figures.version}" in auto_apply
        assert f"{figures.auto_applied_precision:.3f}" in auto_apply
    # v1 was right on ~95% of its labels, v3 on ~70%: precision among auto-applied follows.
    assert by_version["1"].auto_applied_precision > by_version["3"].auto_applied_precision
    assert report.drift is not None and report.drift.current_rows == 320
    assert report.drift.baseline_rows == 150
    drift = page.sections["drift"]["text"]
    assert f"against {month.before().label} (150 tickets)" in drift
    assert all(signal.signal in drift for signal in report.drift.signals)
    assert "Opened: 1; resolved: 1." in page.sections["incidents"]["text"]
    assert "accuracy_7d below 0.90" in page.sections["incidents"]["text"]
    assert "v3 is the quarterly retrain" in page.sections["changes"]["text"]

    empty_page = CliRunner().invoke(
        build_app(), ["report", "monthly", "--month", "2020-01", "--format", "html"]
    )
    assert empty_page.exit_code == 0, empty_page.output
    nothing = _Page.parse(empty_page.output)
    assert all(not s["images"] for s in nothing.sections.values())  # no empty plots
    assert "No tickets this month." in nothing.sections["versions"]["text"]
    assert "month before has no tickets" in nothing.sections["drift"]["text"]


class _Page(HTMLParser):
    """Each ``<section id=...>``: its ``h2``, its text and the ``src`` of its images."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, Any]] = {}
        self.title = ""
        self._section: dict[str, Any] | None = None
        self._tag = ""

    @classmethod
    def parse(cls, html: str) -> _Page:
        page = cls()
        page.feed(html)
        page.close()
        return page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self._tag = tag
        if tag == "section":
            self._section = {"h2": "", "text": "", "images": []}
            self.sections[str(attributes["id"])] = self._section
        elif tag == "img" and self._section is not None:
            self._section["images"].append(attributes["src"])

    def handle_endtag(self, tag: str) -> None:
        self._tag = ""
        if tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        if self._tag == "title":
            self.title += data
        if self._section is not None:
            if self._tag == "h2":
                self._section["h2"] += data
            words = " ".join(data.split())
            if words:
                self._section["text"] += " " + words
