"""The import rules of pyproject.toml hold on the tree, catch a back-arrow, and match the docs.

The layers (top to bottom): ``app`` > ``monitoring | batch`` > ``registry | serving | training``
(independent of each other) > ``data_checks`` > ``core``. ``make lint`` runs the same
contracts with ``lint-imports``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "boltit"
# Drawn top to bottom, in the order of the layers contract.
LAYERS = ["app", "monitoring", "batch", "registry", "serving", "training", "data_checks", "core"]
GRAPH_START = "<!-- import-graph:start -->"
GRAPH_END = "<!-- import-graph:end -->"


@contextmanager
def _boltit_found_in(folder: Path) -> Iterator[None]:
    """Let the linter find ``boltit`` in ``folder`` (it looks the package up with importlib).

    Only the lookup changes: the ``boltit`` modules this process imported stay as they were.
    The linter puts the working folder first on ``sys.path``, so that is ``folder`` too.
    """
    saved_path, saved_cwd = list(sys.path), Path.cwd()
    saved_package = sys.modules.pop(PACKAGE)
    sys.path.insert(0, str(folder))
    os.chdir(folder)
    try:
        spec = importlib.util.find_spec(PACKAGE)
        assert spec is not None and spec.origin == str(folder / PACKAGE / "__init__.py")
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        sys.modules[PACKAGE] = saved_package


def _lint(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = lint_imports(config_filename=str(folder / "pyproject.toml"), no_cache=True, no_logo=True)
    return code, capsys.readouterr().out


def test_the_tree_keeps_the_layers(capsys: pytest.CaptureFixture[str]) -> None:
    saved_path = list(sys.path)
    try:
        code, output = _lint(ROOT, capsys)
    finally:
        sys.path[:] = saved_path  # lint_imports puts the working folder first
    assert code == 0, output
    assert "Imports run down the layers KEPT" in output


def test_a_back_arrow_breaks_the_layers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(
        ROOT / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    vocabulary = tmp_path / PACKAGE / "core" / "vocabulary.py"
    with vocabulary.open("a") as module:
        module.write("\nimport boltit.app.cli  # the floor reaching for the roof\n")
    with _boltit_found_in(tmp_path):
        code, output = _lint(tmp_path, capsys)
    assert code == 1, output
    assert "Imports run down the layers BROKEN" in output
    assert "boltit.core is not allowed to import boltit.app" in output
    assert re.search(r"boltit\.core\.vocabulary -> boltit\.app\.cli \(l\.\d+\)", output), output


def test_siblings_do_not_import_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(
        ROOT / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / PACKAGE / "serving" / "app.py").open("a") as module:
        module.write("\nimport boltit.registry.lookup  # serving follows MLflow, not registry\n")
    with _boltit_found_in(tmp_path):
        code, output = _lint(tmp_path, capsys)
    assert code == 1, output
    assert "boltit.serving is not allowed to import boltit.registry" in output


def draw_import_graph() -> str:
    """The layers as a mermaid flowchart: an arrow wherever one layer imports another."""
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    arrows: set[tuple[str, str]] = set()
    for layer in LAYERS:
        importer = f"{PACKAGE}.{layer}"
        for module in {importer, *graph.find_descendants(importer)}:
            for imported in graph.find_modules_directly_imported_by(module):
                target = imported.split(".")[1] if imported.count(".") else None
                if target in LAYERS and target != layer:
                    arrows.add((layer, target))
    lines = ["```mermaid", "flowchart TD"]
    for importer, imported in sorted(
        arrows, key=lambda a: (LAYERS.index(a[0]), LAYERS.index(a[1]))
    ):
        lines.append(f"    {importer} --> {imported}")
    lines.append("```")
    return "\n".join(lines)


def _drawn_in_docs() -> tuple[Path, str]:
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        if GRAPH_START in text:
            return page, text.split(GRAPH_START, 1)[1].split(GRAPH_END, 1)[0].strip()
    raise AssertionError(f"no docs page holds {GRAPH_START}")


def test_the_docs_draw_the_graph_the_code_has() -> None:
    page, drawn = _drawn_in_docs()
    expected = draw_import_graph()
    assert drawn == expected, (
        f"{page.relative_to(ROOT)} is out of date; put this between its markers:\n{expected}"
    )


def test_every_arrow_runs_down() -> None:
    # The picture itself: no arrow from a lower layer to a higher one.
    rank = {"app": 0, "monitoring": 1, "batch": 1, "registry": 2, "serving": 2, "training": 2}
    rank |= {"data_checks": 3, "core": 4}
    arrows = re.findall(r"(\w+) --> (\w+)", draw_import_graph())
    assert arrows
    assert [(a, b) for a, b in arrows if rank[a] >= rank[b]] == []
