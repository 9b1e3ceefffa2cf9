"""Pure decisions of the request path: which version answers, and whether to auto-apply."""

from __future__ import annotations

import hashlib


def auto_apply_decision(
    *, confidence: float, threshold: float, enabled: bool, on_trial: str | None = None
) -> tuple[bool, str]:
    """Auto-apply when the flag is on and the model is confident enough; else triage.

    ``on_trial`` is the version of a canary that answered: a version not yet proven on live
    traffic never acts on a ticket by itself, however confident it is.
    """
    if on_trial is not None:
        return False, f"triage: canary v{on_trial} is on trial; auto-apply waits for its promotion"
    if not enabled:
        return False, "triage: auto-apply is turned off (auto_apply_enabled=false)"
    if confidence >= threshold:
        return True, f"auto-applied: confidence {confidence:.3f} >= threshold {threshold:.2f}"
    return False, f"triage: confidence {confidence:.3f} < threshold {threshold:.2f}"


def in_canary(text: str, *, percent: float) -> bool:
    """Sticky canary routing: the same ticket text always lands on the same side."""
    if percent <= 0:
        return False
    if percent >= 100:
        return True
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000 < percent * 100
