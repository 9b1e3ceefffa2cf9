"""The end of ``make demo``: a worse version is forced live, feedback arrives, the monitor acts.

Without a running service the demo classifies with the registered model directly and stores
the tickets and the agents' corrections the way serving would (see ``boltit.schema.Ticket``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import mlflow
from mlflow import MlflowClient

from boltit.db import Database
from boltit.errors import BadInputError
from boltit.schema import Ticket, utcnow
from boltit.settings import Settings
from monitoring import incidents, report
from monitoring.monitor import PassResult, run_once


@dataclass(frozen=True)
class RegressionDemo:
    """What the simulated regression produced."""

    forced_version: str
    restored_version: str | None
    accuracy: float
    result: PassResult
    review: str | None


def serve_and_label(
    *,
    settings: Settings,
    database: Database,
    version: str,
    texts: list[str],
    truths: list[str],
    auto_apply: bool = True,
) -> float:
    """Classify ``texts`` with ``version``, store them with the true category as feedback.

    Returns the accuracy the agents' feedback shows.
    """
    if len(texts) != len(truths) or not texts:
        raise BadInputError("the demo needs as many true categories as ticket texts (and some)")
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    classifier = model.unwrap_python_model().classifier  # type: ignore[attr-defined]
    started = time.perf_counter()
    answers = classifier.predict_frame(texts)
    latency_ms = (time.perf_counter() - started) * 1000.0 / len(texts)
    now = utcnow()
    rows = []
    for offset, (text, truth, answer) in enumerate(
        zip(texts, truths, answers.itertuples(index=False), strict=True)
    ):
        confident = float(answer.confidence) >= settings.auto_apply_threshold
        created = now + timedelta(milliseconds=offset)
        rows.append(
            Ticket(
                id=uuid.uuid4().hex,
                text=text,
                category=str(answer.category),
                priority=answer.priority,
                confidence=float(answer.confidence),
                model_name=settings.model_name,
                model_version=version,
                served_by="production",
                latency_ms=latency_ms,
                auto_applied=confident and auto_apply,
                reason="demo: auto-applied" if confident and auto_apply else "demo: triage",
                created_at=created,
                feedback_category=truth,
                feedback_at=created + timedelta(seconds=1),
            )
        )
    with database.session() as session:
        session.add_all(rows)
    correct = sum(row.category == row.feedback_category for row in rows)
    return correct / len(rows)


def simulate_regression(
    *,
    settings: Settings,
    database: Database,
    client: MlflowClient,
    worse_version: str,
    texts: list[str],
    truths: list[str],
    actor: str = "demo",
) -> RegressionDemo:
    """Force ``worse_version`` live, let feedback arrive, run one monitoring pass.

    Returns the pass and the post-incident review (None when no incident was opened).
    """
    from registry.promote import promote

    promote(
        client=client,
        database=database,
        name=settings.model_name,
        version=worse_version,
        actor=actor,
        reason="demo: a worse version is forced live",
        force=True,
        settings=settings,
    )
    accuracy = serve_and_label(
        settings=settings, database=database, version=worse_version, texts=texts, truths=truths
    )
    result = run_once(settings=settings, database=database, client=client)
    review = None
    if result.response.incident_id is not None:
        review = report.render_review(incidents.get_incident(database, result.response.incident_id))
    return RegressionDemo(
        forced_version=worse_version,
        restored_version=result.response.rolled_back_to,
        accuracy=accuracy,
        result=result,
        review=review,
    )
