"""``unionhub caption-worker``: serves the caption requests of a hub cluster from Redis Streams.

The other side of ``remote.py``. A worker loads its models once (speech, translation or both),
joins each kind's consumer group and takes one request at a time: first any request another
worker has held for longer than ``claim_after`` seconds without acknowledging it (it died:
``XAUTOCLAIM``), else a new one (``XREADGROUP``). It replies on the requesting node's stream,
then acknowledges — so a worker that dies in between is answered for twice, and the caller keeps
the first. Requests past their deadline are acknowledged unanswered (the caller gave up). A
worker whose machine is loaded beyond ``max_load`` stops pulling until it is not, so requests go
to workers that can serve them in time. Model work runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError, ResponseError

from core.redis import connect as redis_connect
from core.tasks import cancel, cancelled

from .asr import AsrBackend, AsrSpec, load_backend
from .remote import (
    GROUP,
    WORKER_TTL,
    WORKERS_KEY,
    Kind,
    decode_request,
    encode_result,
    requests_key,
    worker_key,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    redis_url: str
    name: str
    asr: AsrSpec | None  # None: no speech model here
    argos_dir: Path | None  # translation packages (None: no translation here)
    claim_after: float = 15.0  # seconds a request may stay unacknowledged before another worker takes it
    max_load: float = 0.9  # load average per core above which this worker stops pulling
    heartbeat: float = 1.0


class CaptionWorker:
    """One worker process (see the module docstring)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        # (Any: redis-py types replies as str | bytes unions; this client keeps bytes, undecoded)
        self.redis: Any = redis_connect(config.redis_url, socket_connect_timeout=2.0)
        self._asr: AsrBackend | None = None
        self._translator: Any = None
        self.kinds: list[Kind] = []
        self.info: dict[str, Any] = {"pid": os.getpid()}
        self.busy = False
        self.served = 0
        self.claimed = 0
        self.expired = 0
        self._heartbeat: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Load the models (in a thread: they take seconds)."""
        if self.config.asr is not None:
            self._asr = await asyncio.to_thread(load_backend, self.config.asr)
            self.kinds.append(Kind.ASR)
            self.info["multilingual"] = bool(getattr(self._asr, "multilingual", False))
        if self.config.argos_dir is not None:
            from .translate import Translator, configure

            configure(self.config.argos_dir)
            self._translator = await asyncio.to_thread(Translator, 1)
            if self._translator.pairs:
                self.kinds.append(Kind.TRANSLATE)
                self.info["pairs"] = [list(p) for p in self._translator.pairs]
        if not self.kinds:
            raise RuntimeError("this worker has neither a speech model nor a translation package to serve")

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until cancelled; ``on_ready`` once this worker is announced and listening."""
        for kind in self.kinds:
            with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
                await self.redis.xgroup_create(requests_key(kind), GROUP, id="0", mkstream=True)
        await self._announce()
        self._heartbeat = asyncio.create_task(self._beat(), name=f"caption-worker-{self.config.name}")
        logger.info("caption worker %s serving %s", self.config.name, ", ".join(self.kinds))
        if on_ready is not None:
            on_ready()
        try:
            while True:
                if self.overloaded():
                    await asyncio.sleep(0.5)
                    continue
                try:
                    entry = await self._next()
                    if entry is not None:
                        await self._serve(*entry)
                except (RedisError, OSError) as exc:
                    if cancelled():  # redis-py turned our cancellation (SIGTERM) into an error: stop
                        raise asyncio.CancelledError from exc
                    logger.warning("caption worker %s: Redis unreachable (%s)", self.config.name, exc)
                    await asyncio.sleep(1.0)
                if cancelled():  # ... or swallowed it and returned
                    raise asyncio.CancelledError
        finally:
            await self.close()

    def overloaded(self) -> bool:
        return os.getloadavg()[0] / (os.cpu_count() or 1) > self.config.max_load

    async def _next(self) -> tuple[Kind, bytes, dict[bytes, bytes]] | None:
        me = self.config.name
        for kind in self.kinds:
            _start, claimed, _deleted = await self.redis.xautoclaim(
                requests_key(kind), GROUP, me, min_idle_time=int(self.config.claim_after * 1000), start_id="0-0", count=1,
            )
            for entry_id, fields in claimed:
                if fields:
                    self.claimed += 1
                    logger.info("caption worker %s: took over request %s", me, fields.get(b"id", b"?").decode())
                    return kind, entry_id, fields
        streams = {requests_key(kind): ">" for kind in self.kinds}
        batches = await self.redis.xreadgroup(GROUP, me, streams, count=1, block=1000)
        for stream, entries in batches or []:
            kind = Kind(stream.decode().rsplit(":", 1)[1])
            for entry_id, fields in entries:
                return kind, entry_id, fields
        return None

    async def _serve(self, kind: Kind, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        key = requests_key(kind)
        request_id = fields[b"id"].decode()
        if time.time() > float(fields[b"deadline"]):
            self.expired += 1
            await self.redis.xack(key, GROUP, entry_id)
            return
        reply: dict[Any, Any] = {"id": request_id}
        self.busy = True
        try:
            args = decode_request(kind, fields)
            if kind is Kind.ASR:
                assert self._asr is not None
                result: Any = await asyncio.to_thread(self._asr.transcribe, *args)
            else:
                result = await asyncio.to_thread(self._translator.translate_many, *args)
            reply.update(ok="1", result=encode_result(kind, result))
        except Exception as exc:  # one bad request answers with an error; the worker goes on
            logger.exception("caption worker %s: request %s failed", self.config.name, request_id)
            reply.update(ok="0", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.busy = False
        await self.redis.xadd(fields[b"reply"].decode(), reply, maxlen=1000, approximate=True)
        await self.redis.xack(key, GROUP, entry_id)  # after the reply: at least once
        self.served += 1

    async def _announce(self) -> None:
        key = worker_key(self.config.name)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={
                "kinds": ",".join(self.kinds), "info": json.dumps(self.info), "busy": int(self.busy),
                "load": f"{os.getloadavg()[0]:.2f}", "served": self.served,
            })
            pipe.pexpire(key, int(WORKER_TTL * 1000))
            pipe.sadd(WORKERS_KEY, self.config.name)
            await pipe.execute()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat)
            with contextlib.suppress(RedisError, OSError):
                await self._announce()
            if cancelled():  # (redis-py may turn our cancellation into an error, or swallow it)
                raise asyncio.CancelledError

    async def close(self) -> None:
        await cancel(self._heartbeat)
        self._heartbeat = None
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(worker_key(self.config.name))
            await self.redis.srem(WORKERS_KEY, self.config.name)
        await self.redis.aclose()
