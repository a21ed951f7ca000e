"""What deploy/Dockerfile puts in the image works, built as the Dockerfile builds it.

No Docker daemon runs here, so the test does the Dockerfile's steps itself, from the same
inputs: the build context is what ``Dockerfile.dockerignore`` lets in, the build stage's
``COPY`` instructions pick from it, the wheel is built from that alone (``uv build``: the
same hatchling backend ``pip wheel`` calls) and installed with the image's extras into a
fresh environment. That environment then runs the image's ``CMD`` with the image's ``ENV``,
its working folder and HOME read-only (as under Compose's ``read_only: true``: only the
temp folder is writable), on PostgreSQL, and the image's ``HEALTHCHECK`` command passes
while it runs and fails once it has stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from awaithumans.core import Ask
from awaithumans.testing import free_port
from awaithumans.testing._process import stop_process
from tests._waiting import until
from tests.support.deploy_files import DEPLOY, REPO, read_dockerfile

pytestmark = pytest.mark.e2e

UV = str(Path(sys.executable).parent / "uv")


class Release(BaseModel):
    tag: str


class Go(BaseModel):
    ship: bool


def _run(
    cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if env is None:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env=env, cwd=cwd, check=False
    )
    assert done.returncode == 0, f"{cmd}:\n{done.stdout}\n{done.stderr}"
    return done


def _build_context(into: Path) -> None:
    """The repository's root as Docker sends it: ``*``, then the ``!`` lines let back in."""
    lines = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"  # the form read here; test_deploy_files.py pins the rest
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc")
    for line in lines[1:]:
        if not line.startswith("!"):
            continue
        source = REPO / line[1:].rstrip("/")
        if source.is_dir():
            shutil.copytree(source, into / source.name, ignore=ignored)
        else:
            shutil.copy2(source, into / source.name)


def _tracked_package_files() -> set[str]:
    listed = _run(["git", "ls-files", "awaithumans"], cwd=REPO).stdout.split()
    return {path for path in listed if (REPO / path).is_file()}


async def test_the_image_contents_serve_and_pass_their_health_check(
    postgres_url: str, tmp_path: Path
) -> None:
    dockerfile = read_dockerfile(DEPLOY / "Dockerfile")
    context = tmp_path / "context"
    context.mkdir()
    _build_context(context)

    # The build stage: its COPYs, from the context only, into its WORKDIR.
    build = dockerfile.stage("build")
    src = tmp_path / "src"
    src.mkdir()
    for copy in build.all("COPY"):
        *sources, target = copy.args.split()
        for name in sources:
            origin = context / name
            assert origin.exists(), f"COPY {name}: not in the build context"
            if origin.is_dir():
                shutil.copytree(origin, src / target.removeprefix("./"))
            else:
                shutil.copy2(origin, src / name)
    wheels = tmp_path / "wheels"
    _run([UV, "build", "--wheel", "--out-dir", str(wheels), str(src)])
    [wheel] = sorted(wheels.glob("awaithumans-*.whl"))

    # Every file the package tracks is in the wheel: templates, static files, migrations.
    packed = set(zipfile.ZipFile(wheel).namelist())
    missing = _tracked_package_files() - packed
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert any(p.startswith("awaithumans/server/db/migrations/versions/") for p in packed)
    assert any(p.endswith(".html") for p in packed)

    # The final stage's install: the wheel with the image's extras, nothing else asked for.
    extras = dockerfile.args["EXTRAS"]
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    _run([UV, "pip", "install", "--python", python, f"{wheel}[{extras}]"])

    # The image's environment: its ENV, the secrets and database given at run time, PATH
    # to the installed commands, a read-only working folder that is also HOME.
    final = dockerfile.final
    env = final.env()
    home = tmp_path / "state"
    home.mkdir()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    port = free_port()
    env.update(
        HOME=str(home),
        PATH=f"{venv / 'bin'}:/usr/bin:/bin",
        TMPDIR=str(scratch),
        AWAITHUMANS_PORT=str(port),
        AWAITHUMANS_DATABASE_URL=postgres_url,
        AWAITHUMANS_PAYLOAD_KEY=os.urandom(32).hex(),
        AWAITHUMANS_ADMIN_API_TOKEN="image-test-" + os.urandom(8).hex(),
    )
    [cmd] = final.all("CMD")
    command = cmd.exec_form()
    assert command is not None
    # The container's every-interface address stays on loopback on a shared machine.
    command = ["127.0.0.1" if w == "0.0.0.0" else w for w in command]
    [check] = final.all("HEALTHCHECK")
    health = check.exec_form()
    assert health is not None

    def healthy() -> int:
        return subprocess.run(health, env=env, capture_output=True, timeout=30).returncode

    home.chmod(0o555)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT)
    try:

        def why() -> str:
            return log.read_text(errors="replace")

        async def up() -> bool:
            assert server.poll() is None, why()
            return healthy() == 0

        await until(up, timeout=60, why=why, interval=0.2)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {env['AWAITHUMANS_ADMIN_API_TOKEN']}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            ready = await client.get("/api/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["database"] == "postgresql"
            body = Ask(
                task="Ship the image?",
                payload_schema=Release,
                payload=Release(tag="latest"),
                response_schema=Go,
                timeout_seconds=600,
                idempotency_key="image-1",
            ).request()
            made = await client.post(
                "/api/tasks", json=body.model_dump(mode="json", exclude_none=True)
            )
            assert made.status_code == 201, made.text
            again = await client.get(f"/api/tasks/{made.json()['id']}")
            assert again.json()["payload"] == {"tag": "latest"}
        # Nothing was written where the container's file system would be read-only.
        assert sorted(p.name for p in home.iterdir()) == []
        assert "Traceback" not in why()
    finally:
        home.chmod(0o700)
        stopped = time.monotonic()
        stop_process(server, sig=signal.SIGTERM, timeout=30)
    assert server.returncode == 0, log.read_text(errors="replace")
    assert time.monotonic() - stopped < 30
    assert healthy() != 0, "the health check passes with the server stopped"
    # The image's version is the checkout's.
    shown = _run([str(venv / "bin" / "awaithumans"), "version"], env=env).stdout.split()[-1]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert shown == project["version"]
