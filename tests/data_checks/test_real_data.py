"""The shared real help-desk dataset passes ``training_data`` with the documented defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from boltit.data_checks.frames import read_ticket_file
from boltit.data_checks.suites import run_training_data_suite

pytestmark = pytest.mark.real_data


def test_real_tickets_pass_with_defaults(real_data_path: Path, tmp_path: Path) -> None:
    frame = read_ticket_file(real_data_path, text_column="Document", label_column="Topic_group")

    report = run_training_data_suite(frame, data_docs_dir=tmp_path / "docs")

    assert report.success, [o for o in report.outcomes if not o.success]
    observed = {o.name: o for o in report.outcomes}
    assert report.rows == 47_837
    assert observed["at_least_two_categories"].value == 8
    # Hardware 13,617 vs Administrative rights 1,760.
    assert observed["class_imbalance_ratio"].value == pytest.approx(13_617 / 1_760)
    assert observed["duplicate_rate"].value == pytest.approx(0.0)
    assert observed["conflicting_labels"].value == pytest.approx(0.0)
    assert (tmp_path / "docs" / "index.html").is_file()
