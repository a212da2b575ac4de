"""The container files (Dockerfile, deploy/compose/): kept honest without Docker on this machine.
Every file the image copies exists and every shipped package is copied; the image's command and
the compose hub's command are accepted by the CLI; the compose file has the hub, Redis, coturn
and nginx, media published on the hub's UDP port; its nginx configuration passes `nginx -t`.
(This machine has no Docker CLI, so the image itself is not built here: docs/DEPLOYMENT.md
says so.)"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from unionhub.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "deploy" / "compose"
NGINX = "/usr/sbin/nginx"


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (COMPOSE / "env.example").read_text().splitlines()
             if line and not line.startswith("#"))
    return {k: v or "x" * 32 for k, v in pairs}


def test_the_image_copies_every_shipped_package_and_files_that_exist() -> None:
    copied = []
    for word, rest in dockerfile():
        if word == "COPY":
            *sources, _dest = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                copied.append(source)
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in shipped:
        assert pattern.rstrip("*") in copied, f"the image lacks the shipped package {pattern}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "web_client/node_modules" in ignored and ".venv" in ignored, "npm and pip run inside the image"


def test_the_image_command_is_one_the_hub_accepts() -> None:
    cmd = next(json.loads(rest) for word, rest in dockerfile() if word == "CMD")
    assert cmd[0] == "/opt/unionhub/.venv/bin/unionhub"
    args = _parser().parse_args(cmd[1:])
    assert args.command == "serve" and args.udp_port == 10000 and args.host == "0.0.0.0"
    assert ("EXPOSE", "8080/tcp 10000/udp") in dockerfile()


def test_compose_runs_the_hub_with_redis_coturn_and_nginx() -> None:
    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"hub", "redis", "coturn", "nginx"}
    env = env_example()
    command = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], part) for part in services["hub"]["command"]]
    args = _parser().parse_args(command[1:])
    assert args.redis == "redis://redis:6379/0" and args.public_ip == env["PUBLIC_IP"]
    assert f"{args.udp_port}:{args.udp_port}/udp" in services["hub"]["ports"], "media reaches the hub directly"
    turn = " ".join(services["coturn"]["command"])
    assert "--use-auth-secret" in turn and "${UNIONHUB_TURN_SECRET}" in turn, "the hub mints coturn's credentials"
    assert set(env) >= {"UNIONHUB_JWT_SECRET", "UNIONHUB_API_KEY", "UNIONHUB_TURN_SECRET", "HUB_NAME", "PUBLIC_IP"}


def test_the_compose_nginx_configuration_is_valid(tmp_path: Path) -> None:
    if not Path(NGINX).exists():
        pytest.fail("nginx is needed (make test-deps installs it)", pytrace=False)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=hub.test", "-days", "1",
                    "-keyout", str(tmp_path / "privkey.pem"), "-out", str(tmp_path / "fullchain.pem")],
                   check=True, capture_output=True, timeout=60)
    site = (COMPOSE / "nginx.conf").read_text().replace("hub:8080", "127.0.0.1:8080").replace("/certs/", f"{tmp_path}/")
    site = site.replace("listen 80;", "listen 127.0.0.1:18080;").replace("listen 443 ssl;", "listen 127.0.0.1:18443 ssl;")
    temp = "".join(f"{k}_temp_path {tmp_path}/{k}; " for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/e.log; events {{}}\n"
                                         f"http {{ {temp}\n{site}\n}}\n")
    checked = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e",
                              str(tmp_path / "e.log")], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr

