"""Drift is flagged when it is real: a new ticket type and a changed mix, not random halves."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from boltit.core.errors import BadInputError
from boltit.data_checks.drift import (
    DriftReport,
    Verdict,
    detect_drift,
    load_drift_config,
    vocabulary_from,
)
from boltit.data_checks.drift_report import write_html_report
from boltit.data_checks.frames import read_ticket_file
from boltit.training.generator import generate_tickets

# A product the help desk never supported before, in words no baseline ticket uses.
NEW_WORDS = [
    "zyntrax",
    "quorvel",
    "plexidrive",
    "vantaro",
    "flumecast",
    "driveshard",
    "orbiquity",
    "nexalink",
]


def _new_ticket_type(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = [
        f"hello the {' '.join(rng.choice(NEW_WORDS, 3))} is failing again, "
        f"{' '.join(rng.choice(NEW_WORDS, 2))} needs a fix please"
        for _ in range(n)
    ]
    return pd.DataFrame({"text": texts, "category": "Miscellaneous"})


def _shifted(current: pd.DataFrame, *, new: int, seed: int = 1) -> pd.DataFrame:
    # A new ticket type arrives and HR requests vanish (moved to another tool).
    kept = current[current["category"] != "HR Support"].iloc[new:]
    return pd.concat([kept, _new_ticket_type(new, seed)], ignore_index=True)


def _halves(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    half = len(frame) // 2
    return frame.iloc[order[:half]], frame.iloc[order[half:]]


@pytest.fixture(scope="module")
def tickets() -> pd.DataFrame:
    return generate_tickets(4000, seed=21)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_halves_are_not_flagged(tickets: pd.DataFrame, seed: int) -> None:
    baseline, current = _halves(tickets, seed)

    report = detect_drift(baseline, current)

    assert report.flagged == [], report.hints()
    assert not report.critical
    assert report.signal("confidence").verdict is Verdict.SKIPPED


def test_new_ticket_type_and_mix_change_are_flagged(tickets: pd.DataFrame) -> None:
    baseline, current = _halves(tickets, 0)

    report = detect_drift(baseline, _shifted(current, new=300))

    assert report.critical
    assert report.signal("category_mix").verdict is Verdict.CRITICAL
    assert report.signal("vocabulary").verdict is Verdict.CRITICAL
    vocabulary = report.signal("vocabulary").details["top_unseen_tokens"]
    assert set(NEW_WORDS) <= set(vocabulary)
    assert "HR Support" in report.signal("category_mix").summary
    assert any("vocabulary" not in h and "HR Support" in h for h in report.hints())


def test_vocabulary_from_a_fitted_vectorizer(tickets: pd.DataFrame) -> None:
    # As in production: the vectorizer learnt the training split, the baseline is held out.
    training = generate_tickets(3000, seed=22)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2).fit(training["text"])
    baseline, current = _halves(tickets, 0)

    calm = detect_drift(baseline, current, vocabulary=vectorizer)
    shifted = detect_drift(baseline, _shifted(current, new=300), vocabulary=vectorizer)

    assert calm.signal("vocabulary").verdict is Verdict.OK
    assert shifted.signal("vocabulary").verdict is Verdict.CRITICAL
    assert shifted.vocabulary_source == "model vectorizer"


def test_vocabulary_from_a_word_set(tickets: pd.DataFrame) -> None:
    baseline, current = _halves(tickets, 0)
    known = {w for t in tickets["text"] for w in re.findall(r"\w\w+", t.lower())}

    report = detect_drift(baseline, _shifted(current, new=300), vocabulary=known)

    assert report.signal("vocabulary").details["unseen_share_baseline"] == 0.0
    assert report.signal("vocabulary").verdict is Verdict.CRITICAL


def test_confidence_shift_when_predictions_exist(tickets: pd.DataFrame) -> None:
    baseline, current = _halves(tickets, 0)
    rng = np.random.default_rng(4)
    baseline = baseline.assign(confidence=rng.beta(9, 1.5, len(baseline)))
    same = current.assign(confidence=rng.beta(9, 1.5, len(current)))
    lower = current.assign(confidence=rng.beta(4, 2.5, len(current)))

    assert detect_drift(baseline, same).signal("confidence").verdict is Verdict.OK
    report = detect_drift(baseline, lower)
    assert report.signal("confidence").verdict is Verdict.CRITICAL
    assert report.signal("confidence").details["mean_current"] < 0.7


def test_small_samples_are_skipped_not_judged(tickets: pd.DataFrame) -> None:
    report = detect_drift(tickets.head(20), _new_ticket_type(20, 3))

    assert {s.verdict for s in report.signals} == {Verdict.SKIPPED}
    assert report.verdict is Verdict.OK


def test_thresholds_come_from_config(tickets: pd.DataFrame, tmp_path: Path) -> None:
    baseline, current = _halves(tickets, 0)
    override = tmp_path / "drift.yaml"
    override.write_text("signals:\n  category_mix:\n    warning: 0.0\n    critical: 0.000001\n")
    config = load_drift_config(override)

    report = detect_drift(baseline, current.iloc[: len(current) // 3], config=config)

    assert config.thresholds("text_length").critical == 0.20  # untouched keys keep defaults
    assert report.signal("category_mix").thresholds.critical == 0.000001


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("signals:\n  mood:\n    warning: 1\n", "unknown signal 'mood'"),
        ("signals:\n  text_length:\n    warning: 0.5\n    critical: 0.1\n", "warning <= critical"),
        ("- a list\n", "mapping"),
        ("p_value: 3\n", "p_value"),
    ],
)
def test_bad_config_is_refused(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "drift.yaml"
    path.write_text(content)

    with pytest.raises(BadInputError, match=re.escape(problem)):
        load_drift_config(path)


def test_missing_columns_are_refused(tickets: pd.DataFrame) -> None:
    with pytest.raises(BadInputError, match="current data has no category"):
        detect_drift(tickets, tickets.drop(columns=["category"]))
    with pytest.raises(BadInputError, match="cannot take a vocabulary"):
        vocabulary_from(42)


def test_html_report_embeds_plots(tickets: pd.DataFrame, tmp_path: Path) -> None:
    baseline, current = _halves(tickets, 0)
    report = detect_drift(
        baseline.assign(confidence=0.9), _shifted(current, new=300).assign(confidence=0.6)
    )

    written: DriftReport = write_html_report(report, directory=tmp_path / "drift")

    assert written.html_path is not None and written.html_path.parent == tmp_path / "drift"
    page = written.html_path.read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "CRITICAL" in page.upper()
    assert any(word in page for word in NEW_WORDS)
    assert written.to_dict()["html_report"] == str(written.html_path)


@pytest.mark.real_data
def test_real_data_halves_calm_and_injected_shift_flagged(real_data_path: Path) -> None:
    frame = read_ticket_file(real_data_path, text_column="Document", label_column="Topic_group")
    baseline, current = _halves(frame, 7)

    calm = detect_drift(baseline, current)
    shifted = detect_drift(baseline, _shifted(current, new=2500))

    assert calm.flagged == [], calm.hints()
    assert shifted.critical
    assert shifted.signal("category_mix").verdict is Verdict.CRITICAL
    # Real tickets are long (median 175 characters), so 2,500 short new-type tickets move
    # the pooled token share by under 2 points: flagged, at warning level.
    assert shifted.signal("vocabulary") in shifted.flagged
