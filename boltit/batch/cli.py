"""``boltit score``: batch scoring, and ``--compare A B`` on labelled tickets.

Arguments are checked before MLflow, pandas or PySpark load (seconds), so a usage error
comes back at once with exit code 2; PySpark loads only for ``--engine spark``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from boltit.core.actors import current_actor
from boltit.core.console import err, out
from boltit.core.context import AppContext, app_context
from boltit.core.errors import BadInputError

if TYPE_CHECKING:
    from boltit.batch.compare import Comparison
    from boltit.batch.score import ScoreResult
    from boltit.batch.sources import TicketSource

ENGINES = ("local", "spark")


def register(app: typer.Typer) -> None:
    """Add ``score`` to ``app``."""

    @app.command("score")
    def score_command(
        ctx: typer.Context,
        input_path: Annotated[
            Path | None,
            typer.Argument(
                metavar="INPUT",
                help="A .csv file, a .parquet file or a folder of .parquet files.",
                show_default=False,
            ),
        ] = None,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                help="Folder of the Parquet parts (resumed when it holds a started run); "
                "with --compare, where compare.json goes.",
            ),
        ] = None,
        model: Annotated[
            str,
            typer.Option(help="Production, challenger, another alias or a version number."),
        ] = "Production",
        engine: Annotated[str, typer.Option(help="local (pandas) or spark.")] = "local",
        spark_master: Annotated[
            str | None,
            typer.Option(envvar="SPARK_MASTER", help="Spark master URL (default local[*])."),
        ] = None,
        chunk_rows: Annotated[
            int, typer.Option(help="Rows per chunk and per output part.")
        ] = 50_000,
        text_column: Annotated[str, typer.Option(help="Column holding the ticket text.")] = "text",
        id_column: Annotated[
            str, typer.Option(help="Id column copied to the output; rows are numbered without.")
        ] = "id",
        query: Annotated[
            str | None,
            typer.Option(help="A SELECT on the project database (read-only) instead of INPUT."),
        ] = None,
        compare: Annotated[
            tuple[str, str] | None,
            typer.Option(
                metavar="A B",
                help="Compare two versions or aliases on labelled rows instead of scoring "
                "(INPUT or --query with --label-column, or the store's labelled tickets).",
            ),
        ] = None,
        label_column: Annotated[
            str, typer.Option(help="With --compare: the column holding the true category.")
        ] = "category",
        actor: Annotated[
            str | None, typer.Option(help="Who the history records (default: the OS user).")
        ] = None,
    ) -> None:
        """Score tickets in batch with a registered version (local pandas or Spark)."""
        if engine not in ENGINES:
            raise BadInputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if chunk_rows < 1:
            raise BadInputError(f"--chunk-rows must be at least 1, got {chunk_rows}")
        if input_path is not None and query is not None:
            raise BadInputError("give INPUT or --query, not both")
        if input_path is not None and not input_path.exists():
            raise BadInputError(f"{input_path}: no such file or folder")
        comparing = compare is not None and all(compare)
        if not comparing and input_path is None and query is None:
            raise BadInputError("give INPUT (a file or folder) or --query to score")
        if output is None:
            raise BadInputError("--output is required (a folder)")
        if engine == "spark":
            from boltit.batch.spark_engine import java_missing

            missing = java_missing()
            if missing:
                raise BadInputError(f"--engine spark: {missing}")
        context = app_context(ctx)
        from boltit.registry.lookup import prepare_mlflow_for_cli

        prepare_mlflow_for_cli(context.settings)
        if comparing and compare is not None:
            _compare(
                context,
                compare=compare,
                source=_source(
                    context, input_path, query, text_column, id_column, label_column, comparing
                ),
                label_column=label_column,
                output=output,
                engine=engine,
                spark_master=spark_master,
                chunk_rows=chunk_rows,
                actor=current_actor(actor),
            )
            return
        source = _source(context, input_path, query, text_column, id_column, None, False)
        assert source is not None
        from boltit.batch.score import ScoreRequest, score

        request = ScoreRequest(
            source=source,
            output=output,
            model=model,
            engine=engine,  # type: ignore[arg-type]
            chunk_rows=chunk_rows,
            spark_master=spark_master,
            actor=current_actor(actor),
        )
        with _progress(_known_rows(source)) as advance:
            result = score(
                request,
                settings=context.settings,
                client=context.mlflow_client,
                database=context.database,
                advance=advance,
            )
        _print_score(result, output)
        if not result.complete:
            raise BadInputError(f"{output}: not every part was written; run the command again")


def _source(
    context: AppContext,
    input_path: Path | None,
    query: str | None,
    text_column: str,
    id_column: str,
    label_column: str | None,
    comparing: bool,
) -> TicketSource | None:
    from boltit.batch.sources import file_source, query_source

    if input_path is not None:
        return file_source(
            input_path, text_column=text_column, id_column=id_column, label_column=label_column
        )
    if query is not None:
        return query_source(
            context.database,
            query,
            text_column=text_column,
            id_column=id_column,
            label_column=label_column,
        )
    return None  # --compare on the store's labelled tickets


def _known_rows(source: TicketSource) -> int | None:
    if source.kind in ("parquet", "parquet-dir"):
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in source.files)
    return None


@contextmanager
def _progress(total: int | None) -> Iterator[Callable[[int], None]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("scoring", total=total)

        def advance(rows: int) -> None:
            progress.advance(task, rows)

        yield advance


def _print_score(result: ScoreResult, output: Path) -> None:
    resumed = result.parts - result.parts_scored
    out.print(
        f"Scored {result.rows_scored:,} rows with {result.version.name} {result.version.label} "
        f"into {output} ({result.parts_scored} of {result.parts} parts"
        + (f"; {resumed} done before, kept" if resumed else "")
        + f"), {result.rows_per_second:,.0f} rows/s."
    )
    out.print(
        f"Output: {result.rows:,} rows, {result.auto_applied:,} auto-applied "
        f"({result.auto_applied / max(result.rows, 1):.1%}); MLflow run {result.run_id}."
    )
    table = Table(title="Rows per category")
    table.add_column("category")
    table.add_column("rows", justify="right")
    for name, rows in sorted(result.categories.items(), key=lambda kv: -kv[1]):
        table.add_row(name, f"{rows:,}")
    out.print(table)


def _compare(
    context: AppContext,
    *,
    compare: tuple[str, str],
    source: TicketSource | None,
    label_column: str,
    output: Path,
    engine: str,
    spark_master: str | None,
    chunk_rows: int,
    actor: str,
) -> None:
    from boltit.batch.compare import CompareRequest, compare_versions

    comparison = compare_versions(
        CompareRequest(
            first=compare[0],
            second=compare[1],
            source=source,
            label_column=label_column,
            engine=engine,  # type: ignore[arg-type]
            spark_master=spark_master,
            chunk_rows=chunk_rows,
            actor=actor,
        ),
        settings=context.settings,
        client=context.mlflow_client,
        database=context.database,
    )
    output.mkdir(parents=True, exist_ok=True)
    report = output / "compare.json"
    report.write_text(json.dumps(comparison.to_dict(), indent=2), encoding="utf-8")
    _print_comparison(comparison)
    out.print(f"wrote {report}")


def _ci(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def _print_comparison(c: Comparison) -> None:
    a, b = c.first, c.second
    out.print(
        f"{c.rows:,} labelled rows from {c.source}; agreement {c.agreement:.1%} "
        f"{_ci(c.agreement_interval)} ({100 * c.confidence:.4g}% Wilson)."
    )
    summary = Table(title="Accuracy")
    for name in ("version", "accuracy", f"{100 * c.confidence:.4g}% CI", "macro F1"):
        summary.add_column(name, justify="left" if name == "version" else "right")
    for side in (a, b):
        summary.add_row(
            side.label, f"{side.accuracy:.4f}", _ci(side.interval), f"{side.macro_f1:.4f}"
        )
    out.print(summary)
    drop = c.accuracy_drop
    out.print(
        f"Accuracy drop ({a.label} minus {b.label}): {drop.observed:+.4f} "
        f"[{drop.low:+.4f}, {drop.high:+.4f}] (paired bootstrap on {c.bootstrap_rows:,} rows)"
    )
    categories = Table(title="Accuracy per true category")
    for name in ("category", "rows", a.label, b.label):
        categories.add_column(name, justify="left" if name == "category" else "right")
    for name, rows in sorted(c.category_rows.items(), key=lambda kv: -kv[1]):
        categories.add_row(
            name,
            f"{rows:,}",
            f"{a.per_category.get(name, 0.0):.3f}",
            f"{b.per_category.get(name, 0.0):.3f}",
        )
    out.print(categories)
