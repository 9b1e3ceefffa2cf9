"""The OpenAPI document is the contract: schemathesis holds the live service to it.

Every operation, with an all-scope client token, on uvicorn over loopback against a real
registry and ticket store. schemathesis checks status codes, content types, headers and
bodies against what the document declares, and that nothing answers 5xx.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from boltit.core.settings import Settings, load_settings
from boltit.core.tracking import configure_mlflow
from tests.conftest import PROJECT_ENV
from tests.serving.conftest import (
    ADMIN_TOKEN,
    ALL_SCOPES,
    MODEL,
    VENV_BIN,
    WEBHOOK_SECRET,
    ServiceThread,
    add_client,
    bearer,
    register_version,
)

CONFIG = Path(__file__).with_name("schemathesis.toml")
# Bounded: at most this many generated cases per operation and phase.
EXAMPLES_PER_OPERATION = 20


@pytest.fixture(scope="module")
def contract_service(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> Iterator[tuple[ServiceThread, dict[str, str]]]:
    """A closed service (no BOLTIT_INSECURE_OPEN) serving v1, and an all-scope client."""
    root = tmp_path_factory.mktemp("contract")
    with pytest.MonkeyPatch.context() as patch:
        for name in (*PROJECT_ENV, "BOLTIT_INSECURE_OPEN"):
            patch.delenv(name, raising=False)
        settings: Settings = load_settings(
            state_dir=root / "state",
            admin_token=ADMIN_TOKEN,
            webhook_secret=WEBHOOK_SECRET,
            poll_interval_seconds=0.2,
        )
        client = configure_mlflow(settings)
        version = register_version(client, model_dir, root)
        client.set_registered_model_alias(MODEL, "Production", version)
        headers = bearer(add_client(settings, "contract", *ALL_SCOPES))
        with ServiceThread(settings) as running:
            yield running, headers


@pytest.mark.e2e
@pytest.mark.slow  # every schemathesis phase: 20 s measured
def test_schemathesis_finds_no_failure_on_any_operation(
    contract_service: tuple[ServiceThread, dict[str, str]], tmp_path: Path
) -> None:
    # The CLI runs every phase (explicit examples, boundary coverage, fuzzing, stateful
    # links); its pytest loader (``from_fixture``) does not work with pytest 9.
    running, headers = contract_service
    done = subprocess.run(
        [
            str(VENV_BIN / "schemathesis"),
            "--config-file",
            str(CONFIG),
            "run",
            f"{running.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            "13",
            "--workers",
            "1",
            "--request-timeout",
            "60",
            "--header",
            f"Authorization:{headers['Authorization']}",
            "--generation-database",
            "none",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-12000:] + done.stderr[-3000:]
    counted = re.search(r"^\s*(\d+) generated, (\d+) passed(.*)$", done.stdout, re.MULTILINE)
    assert counted is not None, done.stdout[-3000:]
    generated, passed, rest = int(counted[1]), int(counted[2]), counted[3]
    assert passed == generated >= 300 and "fail" not in rest, counted[0]
    # Every operation the document declares was exercised (none filtered out or skipped).
    selected = re.search(r"^\s*Selected: (\d+)/(\d+)$", done.stdout, re.MULTILINE)
    tested = re.search(r"^\s*Tested: (\d+)$", done.stdout, re.MULTILINE)
    assert selected is not None and tested is not None, done.stdout[-3000:]
    assert int(tested[1]) == int(selected[1]) == int(selected[2]) >= 13, (selected[0], tested[0])


def test_the_document_declares_one_error_model(
    contract_service: tuple[ServiceThread, dict[str, str]],
) -> None:
    running, _ = contract_service
    document = httpx.get(f"{running.url}/openapi.json", timeout=30).json()
    components = document["components"]["schemas"]
    assert "HTTPValidationError" not in components
    feedback = document["paths"]["/tickets/{ticket_id}/feedback"]["post"]["responses"]
    assert {"200", "401", "403", "404", "413", "422", "500", "503"} <= set(feedback)
    for code, answer in feedback.items():
        if code != "200":
            assert answer["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorPublic"
            }
    export = document["paths"]["/tickets"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(export)
    assert "401" not in document["paths"]["/health"]["get"]["responses"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
