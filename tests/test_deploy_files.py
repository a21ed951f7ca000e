"""The files in ``deploy/`` say what docs/deploy.md promises: read as Docker, Compose, systemd
and HAProxy read them (no Docker daemon or systemd runs here).

What runs for real is in ``tests/e2e/test_deploy_guide.py`` (the guide's commands, the
Compose topology on real PostgreSQL and HAProxy) and ``tests/e2e/test_deploy_image.py``
(the image's wheel, built from exactly what the build context lets in).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy_files import (
    DEPLOY,
    REPO,
    Dockerfile,
    expand,
    read_dockerfile,
    read_unit,
)

HEALTH_URL = "/api/health"


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return read_dockerfile(DEPLOY / "Dockerfile")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _pip_commands(shell: str) -> list[list[str]]:
    """Each ``pip ...`` command of a RUN line (``a && b`` split into commands)."""
    found = []
    for part in shell.replace("&&", ";").split(";"):
        words = shlex.split(part)
        if "pip" in words:
            found.append(words[words.index("pip") + 1 :])
    return found


# --- Dockerfile -------------------------------------------------------------------------


def test_two_stages_slim_final_on_the_tested_python(dockerfile: Dockerfile) -> None:
    assert [s.name for s in dockerfile.stages] == ["build", None]
    version = dockerfile.args["PYTHON_VERSION"]
    assert version == f"{sys.version_info.major}.{sys.version_info.minor}", (
        "the image should run the Python the test suite runs on"
    )
    build, final = (expand(s.base, dockerfile.args) for s in dockerfile.stages)
    assert build == f"python:{version}-bookworm"  # compilers, for any sdist
    assert final == f"python:{version}-slim-bookworm"  # none
    # Nothing is installed with apt in the final stage: no build tools, nothing else.
    for run in dockerfile.final.all("RUN"):
        assert "apt-get" not in run.args, run
        assert "apt " not in run.args, run


def test_the_final_stage_runs_as_its_own_unprivileged_user(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    users = final.all("USER")
    assert users, "no USER: the server would run as root"
    uid, _, gid = users[-1].args.partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0
    # Numeric (so a runtime that checks runAsNonRoot can tell), and the user made above it.
    made = " ".join(r.args for r in final.all("RUN"))
    assert f"--uid {uid}" in made
    assert f"--gid {gid}" in made
    assert "--shell /usr/sbin/nologin" in made
    # Nothing after USER runs as root again.
    after = final.instructions[final.instructions.index(users[-1]) :]
    assert [i.keyword for i in after if i.keyword == "RUN"] == []
    # The state folder, private to that user, is where it starts.
    assert "install -d -m 0700 -o awaithumans -g awaithumans /var/lib/awaithumans" in made
    assert final.all("WORKDIR")[-1].args == "/var/lib/awaithumans"
    assert final.env()["HOME"] == "/var/lib/awaithumans"


def test_pip_installs_only_our_wheel_and_its_dependencies(dockerfile: Dockerfile) -> None:
    build = dockerfile.stage("build")
    wheels = [c for r in build.all("RUN") for c in _pip_commands(r.args)]
    assert wheels == [["wheel", "--no-cache-dir", "--wheel-dir", "/wheels", ".[${EXTRAS}]"]]
    # The extras: the server's by default, one build argument for every stage that uses it.
    assert dockerfile.args["EXTRAS"] == "server"
    assert all(s.all("ARG")[0].args == "EXTRAS" for s in dockerfile.stages)
    # The wheel is built from the checkout as the build stage copies it.
    copied = [c.args.split() for c in build.all("COPY")]
    assert copied == [["pyproject.toml", "README.md", "./"], ["awaithumans", "./awaithumans"]]

    final = dockerfile.final
    installs = [(r, c) for r in final.all("RUN") for c in _pip_commands(r.args)]
    assert len(installs) == 1, installs
    run, command = installs[0]
    assert command[0] == "install"
    requirements = [w for w in command[1:] if not w.startswith("-")]
    assert requirements == ["awaithumans[${EXTRAS}]"]
    # Only from the build stage's wheels: no index, the wheels mounted (not copied) from it.
    assert "--no-index" in command
    assert "--find-links=/wheels" in command
    assert "--no-cache-dir" in command
    assert run.flags()["mount"] == "type=bind,from=build,source=/wheels,target=/wheels"
    # No source tree, no wheel file in the image.
    assert final.all("COPY") == []
    assert final.all("ADD") == []


def test_health_port_and_command(dockerfile: Dockerfile, compose: dict[str, Any]) -> None:
    final = dockerfile.final
    [check] = final.all("HEALTHCHECK")
    command = check.exec_form()
    assert command is not None, check
    assert command[:2] == ["python", "-c"], check
    assert HEALTH_URL in command[2]
    assert "AWAITHUMANS_PORT" in command[2]
    options = dict(word[2:].split("=") for word in check.args.split(" CMD ")[0].split())
    assert set(options) == {"interval", "timeout", "start-period", "retries"}
    # Compose states the same check for its replicas.
    replica = compose["services"]["awaithumans-1"]
    assert replica["healthcheck"]["test"] == ["CMD", *command]

    env = final.env()
    assert [e.args for e in final.all("EXPOSE")] == [env["AWAITHUMANS_PORT"]] == ["3001"]
    [cmd] = final.all("CMD")
    assert cmd.exec_form() == ["awaithumans", "serve", "--host", "0.0.0.0"]
    assert all(e.exec_form() is not None for e in final.all("ENTRYPOINT"))


def test_env_defaults_are_safe(dockerfile: Dockerfile) -> None:
    env = {k: v for s in dockerfile.stages for k, v in s.env().items()}
    # No secret and no database baked in: `serve` refuses to start until they are given.
    for name in env:
        assert not any(
            word in name for word in ("KEY", "TOKEN", "SECRET", "PASSWORD", "DATABASE_URL")
        ), name
    assert env["AWAITHUMANS_ALLOW_PRIVATE_CALLBACKS"] == "none"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_the_build_context_lets_in_what_the_build_copies(dockerfile: Dockerfile) -> None:
    lines = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Everything out, then only what the wheel is made of back in, minus bytecode.
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "awaithumans"}
    assert {"**/__pycache__", "**/*.pyc"} <= set(lines)
    sources = {word for c in dockerfile.stage("build").all("COPY") for word in c.args.split()[:-1]}
    assert sources == allowed
    assert all((REPO / s).exists() for s in sources)


# --- compose.yaml -----------------------------------------------------------------------


def test_compose_services_share_one_env_and_one_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "awaithumans-1", "awaithumans-2", "proxy"}
    one, two = services["awaithumans-1"], services["awaithumans-2"]
    assert one == two, "the replicas must be configured alike"
    assert one["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / one["build"]["context"] / one["build"]["dockerfile"]).is_file()
    assert one["env_file"] == "awaithumans.env"
    # Secrets live in the env file only, never in the compose file.
    for service in services.values():
        for name in service.get("environment", {}):
            assert not any(w in name for w in ("KEY", "TOKEN", "SECRET", "PASSWORD")), name
    assert one["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert one["restart"] == "unless-stopped"
    assert one["read_only"] is True
    assert one["tmpfs"] == ["/tmp"]
    assert one["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in one["security_opt"]


def test_compose_trusts_the_proxy_and_only_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    proxy_ip = services["proxy"]["networks"]["backend"]["ipv4_address"]
    [subnet] = compose["networks"]["backend"]["ipam"]["config"]
    assert ip_address(proxy_ip) in ip_network(subnet["subnet"])
    for name in ("awaithumans-1", "awaithumans-2"):
        assert services[name]["environment"]["AWAITHUMANS_TRUSTED_PROXIES"] == proxy_ip
        assert services[name]["networks"] == ["backend"]


def test_compose_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = services["postgres"]
    test = postgres["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    assert "--host=127.0.0.1" in test
    assert f"--username={postgres['environment']['POSTGRES_USER']}" in test
    assert f"--dbname={postgres['environment']['POSTGRES_DB']}" in test
    assert postgres["env_file"] == "postgres.env"
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"]
    for name in ("awaithumans-1", "awaithumans-2"):
        check = services[name]["healthcheck"]
        assert HEALTH_URL in check["test"][-1]
        assert {"interval", "timeout", "start_period", "retries"} <= set(check)


def test_compose_proxy_and_haproxy_cfg_agree(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    assert proxy["image"].startswith("haproxy:")
    # HAProxy needs two file descriptors per connection of its maxconn.
    cfg_words = [line.split() for line in (DEPLOY / "haproxy.cfg").read_text().splitlines()]
    [maxconn] = [int(w[1]) for w in cfg_words if w[:1] == ["maxconn"]]
    assert proxy["ulimits"]["nofile"] >= 2 * maxconn + 100
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in proxy["volumes"])
    assert mounts == {
        "./haproxy.cfg": "/usr/local/etc/haproxy/haproxy.cfg",
        "./certs": "/usr/local/etc/haproxy/certs",
    }
    assert all(v.endswith(":ro") for v in proxy["volumes"])
    cfg = (DEPLOY / "haproxy.cfg").read_text()
    lines = [line.split() for line in cfg.splitlines() if line.strip()]
    binds = [w[1].lstrip(":") for w in lines if w[0] == "bind"]
    published = {p.split(":")[1]: p.split(":")[0] for p in proxy["ports"]}
    assert published == {"8080": "80", "8443": "443"}
    assert binds == ["8080", "8443"]
    cert = next(w[w.index("crt") + 1] for w in lines if w[0] == "bind" and "crt" in w)
    assert cert == "/usr/local/etc/haproxy/certs/awaithumans.pem"
    servers = {w[1]: w[2] for w in lines if w[0] == "server"}
    assert servers == {
        "awaithumans-1": "awaithumans-1:3001",
        "awaithumans-2": "awaithumans-2:3001",
    }
    # Readiness, not liveness, decides where traffic goes; long-polls (30 s) fit.
    assert ["http-check", "send", "meth", "GET", "uri", "/api/ready"] in lines
    assert ["timeout", "server", "65s"] in lines
    assert ["timeout", "client", "65s"] in lines
    assert ["option", "forwardfor"] in lines
    assert (DEPLOY / ".gitignore").read_text().split("\n")[1:4] == ["*.env", "certs/", "*.dump"]


def test_haproxy_accepts_the_config(tmp_path: Path) -> None:
    """``haproxy -c`` on deploy/haproxy.cfg, its certificate path pointed at a real one."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    pem = tmp_path / "awaithumans.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(tmp_path / "k"), "-out", str(tmp_path / "c")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    pem.write_bytes((tmp_path / "c").read_bytes() + (tmp_path / "k").read_bytes())
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        (DEPLOY / "haproxy.cfg")
        .read_text()
        .replace("/usr/local/etc/haproxy/certs/awaithumans.pem", str(pem))
    )
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=60, check=False
    )
    out = checked.stdout + checked.stderr
    assert checked.returncode == 0, out
    assert "Configuration file is valid" in out
    # The only warnings: the replicas' names do not resolve outside Compose's network.
    warnings = [line for line in out.splitlines() if "WARNING" in line]
    assert all("could not resolve address 'awaithumans-" in w for w in warnings), out


# --- awaithumans.service ------------------------------------------------------------------


def test_systemd_unit_has_its_user_and_hardening() -> None:
    unit = read_unit(DEPLOY / "awaithumans.service")
    service = unit["Service"]

    def one(key: str) -> str:
        [value] = service[key]
        return value

    assert one("User") == one("Group") == "awaithumans"
    assert one("EnvironmentFile") == "/etc/awaithumans/env"
    assert one("ExecStart").split()[1:] == ["serve"]
    assert one("ExecStart").endswith("/bin/awaithumans serve")
    assert one("Restart") == "on-failure"
    # The state folder is the one writable place under ProtectSystem=strict.
    assert one("StateDirectory") == "awaithumans"
    assert one("StateDirectoryMode") == "0700"
    assert one("WorkingDirectory") == "/var/lib/awaithumans"
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "UMask": "0077",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
    }
    assert {k: one(k) for k in expected} == expected
    assert "ReadWritePaths" not in service  # nothing but the state folder
    assert "network-online.target" in unit["Unit"]["After"][0]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify``: no unknown key, no bad value (ExecStart pointed at ours)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the parse above still ran)")
    unit = tmp_path / "awaithumans.service"
    here = Path(sys.executable).parent / "awaithumans"
    unit.write_text(
        (DEPLOY / "awaithumans.service")
        .read_text()
        .replace("/opt/awaithumans/bin/awaithumans", str(here))
    )
    verified = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout + verified.stderr == ""
