"""Caption workers on other machines: speech-to-text and translation requests over Redis Streams.

A hub node started with ``--caption-pool redis://…`` loads no model: :class:`RemotePool` stands
where the local :class:`~captioning.workers.WorkerPool` would (same ``start``/``call``/``idle``/
``size``/``close``), and each call becomes an entry on a Redis Stream that any
``unionhub caption-worker`` (``remote_worker.py``), on a CPU or a GPU machine, takes through a
consumer group. Delivery is at least once — a worker that dies with a request leaves it pending,
and another claims it (``XAUTOCLAIM``) — so replies are de-duplicated here by request id, and a
reply after the caller gave up is dropped. Redis Streams and consumer groups are the ecosystem's
engine for this; nothing here re-implements a queue.

Keys (``uh:cap:`` prefix): ``req:<kind>`` the requests of one kind (``asr``, ``translate``);
``rep:<node>`` the replies to one node; ``worker:<name>`` a worker's heartbeat hash (kinds, what
its model can do, busy); ``workers`` the set of worker names.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
from redis.exceptions import RedisError

from core.redis import connect as redis_connect
from core.tasks import cancelled

from .asr import Transcript
from .language import LanguageHint
from .workers import ModelLoadError, WorkerCrashed, _transcribe, _translate_many

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The consumer group every worker of a kind reads in.
GROUP = "workers"
#: Requests kept per stream (older ones are trimmed; pending ones stay claimable).
MAX_REQUESTS = 10_000
#: Seconds a caller waits for a reply before it gives the request up (its reply, if it comes, is dropped).
CALL_TIMEOUT = {"asr": 30.0, "translate": 15.0}
#: Seconds a worker's heartbeat lives; a silent worker is not counted.
WORKER_TTL = 5.0


class Kind(StrEnum):
    """What a worker serves: one stream of requests per kind."""

    ASR = "asr"
    TRANSLATE = "translate"


def requests_key(kind: Kind) -> str:
    return f"uh:cap:req:{kind}"


def replies_key(node: str) -> str:
    return f"uh:cap:rep:{node}"


def worker_key(name: str) -> str:
    return f"uh:cap:worker:{name}"


WORKERS_KEY = "uh:cap:workers"


def encode_request(kind: Kind, args: tuple[Any, ...]) -> dict[str, bytes | str]:
    """The fields of a request entry (audio as raw float32, the rest as JSON)."""
    if kind is Kind.ASR:
        audio, language, prompt = args
        if isinstance(language, LanguageHint):  # (--spoken-language detect: the rule travels along)
            language = dataclasses.asdict(language)
        return {"audio": np.asarray(audio, dtype=np.float32).tobytes(), "args": json.dumps([language, prompt])}
    text, source, targets = args
    return {"args": json.dumps([text, source, list(targets)])}


def decode_request(kind: Kind, fields: dict[bytes, bytes]) -> tuple[Any, ...]:
    args = json.loads(fields[b"args"])
    if kind is Kind.ASR:
        language = args[0]
        if isinstance(language, dict):
            language = LanguageHint(**{**language, "expected": tuple(language.get("expected", ()))})
        return (np.frombuffer(fields[b"audio"], dtype=np.float32), language, args[1])
    return (str(args[0]), str(args[1]), [str(t) for t in args[2]])


def encode_result(kind: Kind, result: Any) -> str:
    if kind is Kind.ASR:
        return json.dumps({"text": result.text, "language": result.language, "p": result.language_probability})
    return json.dumps(dict(result))


def decode_result(kind: Kind, text: bytes) -> Any:
    data = json.loads(text)
    if kind is Kind.ASR:
        return Transcript(str(data["text"]), str(data["language"]), float(data["p"]))
    return {str(k): str(v) for k, v in data.items()}


class RemotePool:
    """A :class:`~captioning.workers.WorkerPool` whose workers are ``unionhub caption-worker``
    processes reached through Redis (see the module docstring)."""

    def __init__(self, kind: Kind, redis_url: str, node: str, wait: float = 30.0) -> None:
        self.kind = kind
        self.name = f"remote-{kind}"
        self.node = node
        # (Any: redis-py types replies as str | bytes unions; this client keeps bytes, undecoded)
        self.redis: Any = redis_connect(redis_url, socket_connect_timeout=2.0)
        self.wait = wait  # seconds start() waits for a first worker
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count()
        self._prefix = f"{node}-{os.getpid()}-{int(time.time() * 1000)}"
        self._listener: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[Any] | None = None
        self._workers = 0
        self._answered: collections.OrderedDict[str, None] = collections.OrderedDict()  # recent ids
        self.duplicates = 0  # replies for a request already answered (a claimed request done twice)
        self.late = 0  # replies after the caller gave up
        self.timeouts = 0
        self.restarts = 0  # (WorkerPool's interface: remote workers restart on their own machines)

    # -- WorkerPool's interface -------------------------------------------------------------

    async def start(self, probe: Callable[[], Any]) -> Any:
        """Wait for a live worker of this kind; what its model can do (as the local probe says)."""
        deadline = time.monotonic() + self.wait
        while True:
            try:
                found = await self.live_workers()
            except (RedisError, OSError) as exc:
                raise ModelLoadError(f"{self.name}: the caption pool's Redis is unreachable ({exc})") from exc
            if found:
                break
            if time.monotonic() > deadline:
                raise ModelLoadError(f"{self.name}: no `unionhub caption-worker` serves {self.kind} "
                                     f"(waited {self.wait:.0f} s)")
            await asyncio.sleep(0.5)
        self._workers = len(found)
        self._listener = asyncio.create_task(self._listen(), name=f"caption-replies-{self.node}")
        return json.loads(found[0].get("info", "{}"))

    @property
    def size(self) -> int:
        return max(1, self._workers)

    @property
    def idle(self) -> int:
        return max(0, self.size - len(self._pending))

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        expected = _transcribe if self.kind is Kind.ASR else _translate_many
        if fn is not expected:
            raise ValueError(f"{self.name} serves {expected.__name__} only")
        request_id = f"{self._prefix}-{next(self._ids)}"
        timeout = CALL_TIMEOUT[self.kind]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            fields: dict[Any, Any] = {"id": request_id, "reply": replies_key(self.node),
                                      "deadline": f"{time.time() + timeout:.3f}", **encode_request(self.kind, args)}
            try:
                await self.redis.xadd(requests_key(self.kind), fields, maxlen=MAX_REQUESTS, approximate=True)
            except (RedisError, OSError) as exc:
                raise WorkerCrashed(f"{self.name}: request not queued ({exc})") from exc
            try:
                result: T = await asyncio.wait_for(future, timeout)
            except TimeoutError as exc:
                self.timeouts += 1
                raise WorkerCrashed(f"{self.name}: no reply within {timeout:.0f} s") from exc
            return result
        finally:
            self._pending.pop(request_id, None)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None
        for future in self._pending.values():
            future.cancel()
        self._closing = asyncio.ensure_future(self.redis.aclose())  # (close() is synchronous, as WorkerPool's)

    # -- replies ----------------------------------------------------------------------------

    async def live_workers(self) -> list[dict[str, str]]:
        """Heartbeats of the workers that serve this kind now."""
        names = sorted(n.decode() for n in await self.redis.smembers(WORKERS_KEY))
        found = []
        for name in names:
            fields = await self.redis.hgetall(worker_key(name))
            if not fields:
                await self.redis.srem(WORKERS_KEY, name)
                continue
            got = {k.decode(): v.decode() for k, v in fields.items()}
            if self.kind in got.get("kinds", "").split(","):
                found.append(got)
        return found

    async def _listen(self) -> None:
        key = replies_key(self.node)
        last = "$"
        while True:
            try:
                batches = await self.redis.xread({key: last}, count=100, block=1000)
            except (RedisError, OSError) as exc:
                if cancelled():  # redis-py turned our cancellation into an error: stop, as asked
                    raise asyncio.CancelledError from exc
                logger.warning("caption pool: replies unreachable (%s)", exc)
                await asyncio.sleep(1.0)
                continue
            if cancelled():  # ... or swallowed it and returned
                raise asyncio.CancelledError
            for _stream, entries in batches or []:
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    self._deliver(fields)
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.xtrim(key, maxlen=1000, approximate=True)

    def _deliver(self, fields: dict[bytes, bytes]) -> None:
        request_id = fields.get(b"id", b"").decode()
        future = self._pending.get(request_id)
        if request_id in self._answered or (future is not None and future.done()):
            self.duplicates += 1
            return
        if future is None:
            self.late += 1
            return
        self._answered[request_id] = None
        if len(self._answered) > 1000:
            self._answered.popitem(last=False)
        if fields.get(b"ok") == b"1":
            future.set_result(decode_result(self.kind, fields[b"result"]))
        else:
            future.set_exception(WorkerCrashed(fields.get(b"error", b"worker error").decode()))

    def __repr__(self) -> str:
        return f"RemotePool({self.kind}, node={self.node}, workers={self._workers})"
