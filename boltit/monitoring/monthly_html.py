"""The monthly report (``monthly.MonthlyReport``) as one self-contained HTML page: Jinja2 for
the page, matplotlib (Agg) for the plots, embedded as base64 PNG so the file can be mailed or
attached to a ticket without the folder it came from."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from boltit.core.figures import png_base64
from boltit.monitoring.monthly import CONFIDENCE, MonthlyReport

TEMPLATE = "monthly.html.j2"


def render_html(report: MonthlyReport, *, now: datetime | None = None) -> str:
    """The report as an HTML page; a plot is left out (with a sentence) when it has no data."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("boltit.monitoring", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    incidents = {i.id: i for i in [*report.incidents_opened, *report.incidents_resolved]}
    return environment.get_template(TEMPLATE).render(
        report=report,
        plots=_plots(report),
        incidents=list(incidents.values()),
        confidence_level=f"{CONFIDENCE:.0%}",
        generated=f"{(now or datetime.now(UTC)):%Y-%m-%d %H:%M} UTC",
    )


def _plots(report: MonthlyReport) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images: dict[str, str] = {}
    versions = report.versions
    dated = [v for v in versions if v.daily]
    if dated:
        figure, axes = plt.subplots(figsize=(8, 3.5))
        for v in dated:
            days = np.array([day for day, _, _ in v.daily], dtype="datetime64[D]")
            axes.plot(days, [c / n for _, n, c in v.daily], marker="o", label=f"v{v.version}")
        axes.set_ylabel("daily accuracy (labelled)")
        axes.set_ylim(0, 1.02)
        axes.legend()
        figure.autofmt_xdate()
        images["accuracy_over_time"] = png_base64(figure)
    labelled = [v for v in versions if v.category_accuracy]
    if labelled:
        categories = sorted({c for v in labelled for c in v.category_accuracy})
        figure, axes = plt.subplots(figsize=(8, 0.5 + 0.35 * len(categories) * len(labelled)))
        height = 0.8 / len(labelled)
        positions = np.arange(len(categories))
        for index, v in enumerate(labelled):
            values = [v.category_accuracy.get(c, (0, np.nan))[1] for c in categories]
            axes.barh(positions + index * height, values, height, label=f"v{v.version}")
        axes.set_yticks(positions + height * (len(labelled) - 1) / 2, categories)
        axes.set_xlabel("accuracy (recall against the agent's category)")
        axes.set_xlim(0, 1)
        axes.legend()
        images["category_accuracy"] = png_base64(figure)
    scored = [v for v in versions if v.confidences]
    if scored:
        figure, axes = plt.subplots(figsize=(8, 3.5))
        for v in scored:
            axes.hist(
                v.confidences,
                bins=40,
                range=(0.0, 1.0),
                histtype="step",
                density=True,
                label=f"v{v.version}",
            )
        axes.set_xlabel("confidence")
        axes.set_ylabel("density")
        axes.legend()
        images["confidence"] = png_base64(figure)
    if versions:
        figure, axes = plt.subplots(figsize=(8, 3.5))
        positions = np.arange(len(versions))
        precision = [
            np.nan if v.auto_applied_precision is None else v.auto_applied_precision
            for v in versions
        ]
        axes.bar(positions - 0.2, [v.auto_applied_share for v in versions], 0.4, label="coverage")
        axes.bar(positions + 0.2, precision, 0.4, label="precision (labelled)")
        axes.set_xticks(positions, [f"v{v.version}" for v in versions])
        axes.set_ylabel("share of tickets")
        axes.set_ylim(0, 1.02)
        axes.legend()
        images["auto_apply"] = png_base64(figure)
    return images
