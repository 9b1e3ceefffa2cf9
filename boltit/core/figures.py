"""Matplotlib figures as base64 PNG, for self-contained HTML pages (drift and monthly reports)."""

from __future__ import annotations

import base64
import io
from typing import Any


def png_base64(figure: Any) -> str:
    """``figure`` laid out, drawn as a PNG, base64-encoded; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
