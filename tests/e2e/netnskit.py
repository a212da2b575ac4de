"""A browser behind its own network: a namespace joined to this machine by a veth pair (addresses
on this machine only), and a Chromium launcher that runs inside it. Needs root (as in CI); the
tests shape, filter or translate the link with tc/nftables on top."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def sh(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(args, check=True, capture_output=True, timeout=10, text=True, input=stdin).stdout


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.fail(f"network namespaces and {what} need root (as in CI)", pytrace=False)


def veth_namespace(ns: str, host_if: str, ns_if: str, host_ip: str, ns_ip: str) -> None:
    """Create namespace ``ns`` with ``ns_if`` (``ns_ip``/30) paired to ``host_if`` (``host_ip``/30)
    here, both up (a leftover of a killed run is removed first)."""
    remove_namespace(ns, host_if)
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
    sh("ip", "link", "set", ns_if, "netns", ns)
    sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
    sh("ip", "link", "set", host_if, "up")
    sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
    sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
    sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")


def remove_namespace(ns: str, host_if: str) -> None:
    subprocess.run(["ip", "link", "del", host_if], capture_output=True)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def chromium_in(ns: str, folder: Path) -> Path:
    """A script that starts Debian's Chromium inside ``ns`` (Playwright's ``executable_path``)."""
    script = folder / "chromium-in-netns"
    script.write_text(f'#!/bin/sh\nexec ip netns exec {ns} /usr/bin/chromium "$@"\n')
    script.chmod(0o755)
    return script
