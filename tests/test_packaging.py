"""What a user gets from ``pip install awaithumans``: a light SDK, a stable API, a clear CLI hint.

The wheel test builds the real wheel and installs it, without extras, into a fresh virtual
environment (uv resolves from the registry, through its cache).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import awaithumans
import awaithumans.core

REPO = Path(__file__).resolve().parents[1]
UV = str(Path(sys.executable).parent / "uv")

HEAVY = ["fastapi", "langgraph", "prefect", "sqlalchemy", "starlette", "temporalio", "uvicorn"]

PUBLIC_API = [
    "ApiError",
    "Approval",
    "AuthenticationError",
    "AwaitHumansError",
    "ConfigurationError",
    "ErrorCode",
    "FormDefinition",
    "FormField",
    "IdempotencyConflictError",
    "InvalidRequestError",
    "InvalidResumeError",
    "MissingExtraError",
    "NotOurEventError",
    "PermissionDeniedError",
    "ReceiptInvalidError",
    "RetryLaterError",
    "SchemaValidationError",
    "ServerUnreachableError",
    "TaskCancelledError",
    "TaskClient",
    "TaskError",
    "TaskNotFoundError",
    "TaskStatus",
    "TaskTimeoutError",
    "TimeoutRangeError",
    "VerificationExhaustedError",
    "VerifiedReceipt",
    "__version__",
    "approvals_of",
    "await_human",
    "await_human_sync",
    "extract_form",
    "is_default",
    "verify_receipt",
]
CORE_API = sorted(
    [
        *(n for n in PUBLIC_API if n != "__version__"),
        "ASK_PARAMETERS",
        "Ask",
        "form_from_json_schema",
    ]
)

# The base install: the SDK's two dependencies and what they pull in.
BASE_DISTRIBUTIONS = {
    "awaithumans",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "idna",
    "sniffio",
    "certifi",
    "exceptiongroup",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-extensions",
    "typing-inspection",
}


def run(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, check=False, env=env, cwd=cwd
    )
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_import_does_not_load_server_or_adapter_dependencies() -> None:
    probe = (
        "import sys, json, awaithumans\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(json.loads(run([sys.executable, "-c", probe]).stdout))
    assert "pydantic" in loaded
    assert "httpx" in loaded
    assert sorted(loaded & set(HEAVY)) == []
    # Nor any of our own server or adapter modules.
    probe_ours = (
        "import sys, json, awaithumans\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('awaithumans.'))))"
    )
    ours = json.loads(run([sys.executable, "-c", probe_ours]).stdout)
    assert all(m.startswith(("awaithumans.core", "awaithumans._version")) for m in ours), ours


def test_public_api_is_pinned_and_sorted() -> None:
    assert awaithumans.__all__ == sorted(awaithumans.__all__)
    assert awaithumans.__all__ == PUBLIC_API
    assert awaithumans.core.__all__ == sorted(awaithumans.core.__all__)
    assert awaithumans.core.__all__ == CORE_API
    for name in awaithumans.__all__:
        if name != "__version__":
            assert getattr(awaithumans, name) is getattr(awaithumans.core, name)
    assert awaithumans.__version__ == importlib.metadata.version("awaithumans")


def test_wheel_without_extras_is_the_sdk_and_the_cli_names_the_extra(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    dist = tmp_path / "dist"
    run([UV, "build", "--wheel", "--out-dir", str(dist), str(REPO)], env=env)
    wheels = sorted(dist.glob("awaithumans-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env=env)
    python = str(venv / "bin" / "python")
    run([UV, "pip", "install", "--python", python, str(wheels[0])], env=env)

    listed = run([UV, "pip", "list", "--python", python, "--format", "json"], env=env)
    installed = {item["name"].lower().replace("_", "-") for item in json.loads(listed.stdout)}
    assert {"awaithumans", "httpx", "pydantic"} <= installed
    assert installed <= BASE_DISTRIBUTIONS, installed - BASE_DISTRIBUTIONS
    for heavy in ("fastapi", "sqlalchemy", "uvicorn", "starlette"):
        assert heavy not in installed

    # The SDK imports, from the installed wheel, not from this source tree.
    where = run(
        [python, "-c", "import awaithumans; print(awaithumans.__file__, awaithumans.__all__)"],
        env=env,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(venv)), where.stdout
    assert "await_human_sync" in where.stdout

    home = tmp_path / "home"
    home.mkdir()
    cli_env = {k: v for k, v in env.items() if not k.startswith("AWAITHUMANS_")}
    cli_env["HOME"] = str(home)
    cli = subprocess.run(
        [str(venv / "bin" / "awaithumans"), "dev"],
        cwd=tmp_path,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode != 0
    assert "awaithumans[server]" in cli.stderr, cli.stderr
    assert "Traceback" not in cli.stderr
    assert cli.stdout == ""
    assert not (home / ".awaithumans-dev.json").exists()
    assert not (tmp_path / ".awaithumans").exists()
