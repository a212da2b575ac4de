"""deploy/unionhub.service (issue #18 item 6): a unit systemd accepts, hardened as the issue asks
(its own user, ProtectSystem=strict, NoNewPrivileges, state in /var/lib/unionhub), that stops
the hub with SIGTERM and gives it longer than its --shutdown-timeout, with flags the hub knows.

systemd-analyze checks it offline (this machine runs no systemd): ``verify`` for syntax and
executables, ``security --offline`` for the exposure score."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from unionhub.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "unionhub.service"
SYSUSERS = ROOT / "deploy" / "unionhub.sysusers"
#: The exposure score (0 safest … 10, "OK" below 3) `systemd-analyze security` may give at most.
MAX_EXPOSURE = 2.0


def unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections → keys → values (a key may repeat, as SystemCallFilter does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def one(section: dict[str, list[str]], key: str) -> str:
    values = section.get(key, [])
    assert len(values) == 1, (key, values)
    return values[0]


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is needed to check deploy/unionhub.service (apt-get install systemd)",
                    pytrace=False)
    return path


def local_copy(tmp_path: Path) -> Path:
    """The unit with this checkout in place of /opt/unionhub (verify checks ExecStart exists)."""
    assert (ROOT / ".venv/bin/unionhub").exists()
    copy = tmp_path / "unionhub.service"
    copy.write_text(UNIT.read_text().replace("/opt/unionhub", str(ROOT)))
    return copy


def test_the_unit_is_hardened_and_runs_the_hub_as_its_own_user() -> None:
    service = unit(UNIT.read_text())["Service"]
    assert one(service, "User") == "unionhub" and one(service, "Group") == "unionhub"
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "RestrictSUIDSGID": "yes", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "ProtectControlGroups": "yes", "LockPersonality": "yes",
        "StateDirectory": "unionhub", "CapabilityBoundingSet": "", "KillSignal": "SIGTERM",
    }.items():
        assert one(service, key) == value, key
    assert "@system-service" in service["SystemCallFilter"]
    # the sysusers file creates that user, with its home in the state directory
    assert SYSUSERS.read_text().split("\n")[1].split()[:2] == ["u", "unionhub"]
    assert "/var/lib/unionhub" in SYSUSERS.read_text()


def test_exec_start_uses_flags_the_hub_knows_and_stops_within_the_unit_timeout() -> None:
    service = unit(UNIT.read_text())["Service"]
    command = shlex.split(one(service, "ExecStart"))
    assert command[0].endswith("/unionhub")
    args = _parser().parse_args(command[1:])  # an unknown flag exits here
    assert args.command == "serve"
    assert str(args.data_dir) == "/var/lib/unionhub"  # = StateDirectory, the only writable place
    assert args.log_format == "json"
    assert float(one(service, "TimeoutStopSec")) > args.shutdown_timeout  # the drain is not cut short


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    result = subprocess.run([systemd_analyze(), "verify", "--man=no", str(local_copy(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # not even a warning


def test_systemd_rates_the_unit_safe(tmp_path: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", f"--threshold={round(MAX_EXPOSURE * 10)}", str(local_copy(tmp_path))],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr  # (--threshold is in tenths)
    assert "Overall exposure level for unionhub.service" in result.stdout
