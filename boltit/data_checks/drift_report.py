"""The drift report as one self-contained HTML page with its plots embedded."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from boltit.core.figures import png_base64
from boltit.data_checks.drift import DriftReport

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Drift: {{ report.baseline_label }} vs {{ report.current_label }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 62rem; color: #222; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left; }
.ok { color: #1a7f37; } .warning { color: #9a6700; } .critical { color: #cf222e; }
.skipped { color: #888; } .verdict { font-weight: 600; text-transform: uppercase; }
img { max-width: 100%; } section { margin-top: 2rem; }
</style></head><body>
<h1>Distribution shift: <span class="verdict {{ report.verdict.value }}">
{{ report.verdict.value }}</span></h1>
<p>Baseline <b>{{ report.baseline_label }}</b> ({{ report.baseline_rows }} tickets) vs
current <b>{{ report.current_label }}</b> ({{ report.current_rows }} tickets).
Vocabulary: {{ report.vocabulary_source }}. Generated {{ generated }}.</p>
<table><tr><th>signal</th><th>statistic</th><th>value</th><th>p-value</th>
<th>warning</th><th>critical</th><th>verdict</th></tr>
{% for s in report.signals %}<tr><td>{{ s.signal }}</td><td>{{ s.statistic }}</td>
<td>{{ "%.4f"|format(s.value) if s.value is not none else "-" }}</td>
<td>{{ "%.3g"|format(s.p_value) if s.p_value is not none else "-" }}</td>
<td>{{ s.thresholds.warning }}</td><td>{{ s.thresholds.critical }}</td>
<td class="verdict {{ s.verdict.value }}">{{ s.verdict.value }}</td></tr>
{% endfor %}</table>
{% for s in report.signals %}<section><h2>{{ s.signal | replace("_", " ") }}</h2>
<p>{{ s.summary }}</p>
{% if plots.get(s.signal) %}<img alt="{{ s.signal }}"
 src="data:image/png;base64,{{ plots[s.signal] }}">{% endif %}</section>
{% endfor %}</body></html>
"""


def write_html_report(report: DriftReport, *, directory: Path) -> DriftReport:
    """Render ``report`` under ``directory``; returns the report with ``html_path`` set."""
    import jinja2

    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC)
    path = directory / f"drift-{stamp:%Y%m%dT%H%M%S%fZ}.html"
    environment = jinja2.Environment(autoescape=True)
    page = environment.from_string(_TEMPLATE).render(
        report=report, plots=_plots(report.plot_data), generated=f"{stamp:%Y-%m-%d %H:%M} UTC"
    )
    path.write_text(page, encoding="utf-8")
    return replace(report, html_path=path)


def _plots(data: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images: dict[str, str] = {}
    if "category_mix" in data:
        categories = data["category_mix"]["categories"]
        shares = np.asarray(data["category_mix"]["shares"])
        figure, axes = plt.subplots(figsize=(8, 3.5))
        positions = np.arange(len(categories))
        axes.bar(positions - 0.2, shares[0], 0.4, label="baseline")
        axes.bar(positions + 0.2, shares[1], 0.4, label="current")
        axes.set_xticks(positions, categories, rotation=30, ha="right")
        axes.set_ylabel("share of tickets")
        axes.legend()
        images["category_mix"] = png_base64(figure)
    for signal, unit in (("text_length", "characters"), ("confidence", "confidence")):
        if signal in data:
            figure, axes = plt.subplots(figsize=(8, 3.5))
            both = np.concatenate([data[signal]["baseline"], data[signal]["current"]])
            # Ticket lengths have a long tail of pasted logs; show the bulk (99%).
            top = float(np.quantile(both, 0.99)) if signal == "text_length" else both.max()
            bins = np.histogram_bin_edges(both, bins=40, range=(both.min(), top)).tolist()
            for side in ("baseline", "current"):
                axes.hist(data[signal][side], bins=bins, alpha=0.5, density=True, label=side)
            axes.set_xlabel(unit if signal != "text_length" else f"{unit} (up to the 99th pct)")
            axes.set_ylabel("density")
            axes.legend()
            images[signal] = png_base64(figure)
    top = data.get("vocabulary", {}).get("top_unseen") or []
    if top:
        figure, axes = plt.subplots(figsize=(8, 3.5))
        words, counts = zip(*reversed(top), strict=True)
        axes.barh(words, counts)
        axes.set_xlabel("occurrences in current tickets")
        axes.set_title("most frequent unseen tokens")
        images["vocabulary"] = png_base64(figure)
    return images
