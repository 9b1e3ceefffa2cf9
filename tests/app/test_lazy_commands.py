"""The root CLI knows every command by name and imports a command's module only to run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import boltit
from boltit.app.cli import COMMAND_MODULES, build_app, module_commands


def test_the_command_map_matches_what_each_module_registers() -> None:
    registered = {
        name: module for module in set(COMMAND_MODULES.values()) for name in module_commands(module)
    }

    assert registered == COMMAND_MODULES


def test_every_module_with_commands_is_in_the_map() -> None:
    package = Path(boltit.__file__).parent
    with_commands = {
        ".".join(path.relative_to(package.parent).with_suffix("").parts)
        for path in package.rglob("*.py")
        if "\ndef register(app: typer.Typer)" in path.read_text(encoding="utf-8")
    }

    assert with_commands == set(COMMAND_MODULES.values())


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(build_app(), ["--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    listed = [line.split()[1] for line in result.output.splitlines() if line.startswith("│ ")]
    assert [name for name in listed if name in COMMAND_MODULES] == list(COMMAND_MODULES)


def test_a_mistyped_command_is_named_with_a_suggestion() -> None:
    result = CliRunner().invoke(build_app(), ["rolback"])

    assert result.exit_code == 2
    assert "No such command 'rolback'" in result.output and "'rollback'" in result.output


@pytest.mark.e2e
def test_running_one_command_imports_no_other_commands_module() -> None:
    code = (
        "import json, sys\n"
        "from boltit.app.cli import main\n"
        "sys.argv = ['boltit', 'flags', 'set', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted(set({list(COMMAND_MODULES.values())!r}) & set(sys.modules))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )

    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["boltit.app.flags_cli"]
