"""media_server/audio_tap.py: one publisher's decoded audio, fanned out to bounded queues."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from media_server.audio_tap import AudioTap

LIVENESS_TIMEOUT = 5.0  # an end marker that never comes fails the test instead of hanging it


def audio_frame(index: int) -> AudioFrame:
    frame = AudioFrame.from_ndarray(
        np.full((1, 960 * 2), index, np.int16), format="s16", layout="stereo"
    )
    frame.sample_rate = 48000
    frame.pts = index * 960
    return frame


class ScriptedAudioTrack(MediaStreamTrack):
    """Produces the given frames, then (once ``release`` is set) ends like a stopped receiver.

    ``drained`` is set when the consumer asks for a frame beyond the last one, i.e. after it has
    dealt with every frame.
    """

    kind = "audio"

    def __init__(self, frames: list[AudioFrame], hold: bool = False) -> None:
        super().__init__()
        self._frames = list(frames)
        self.drained = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def recv(self) -> AudioFrame:  # type: ignore[override]
        if self._frames:
            return self._frames.pop(0)
        self.drained.set()
        await self.release.wait()
        raise MediaStreamError


async def read_all(q: asyncio.Queue[AudioFrame | None]) -> list[AudioFrame | None]:
    items: list[AudioFrame | None] = []
    while True:
        item = await asyncio.wait_for(q.get(), LIVENESS_TIMEOUT)
        items.append(item)
        if item is None:
            return items


def queued(q: asyncio.Queue[AudioFrame | None]) -> list[AudioFrame | None]:
    items = []
    while not q.empty():
        items.append(q.get_nowait())
    return items


async def test_every_subscriber_gets_every_frame_then_the_end() -> None:
    frames = [audio_frame(i) for i in range(10)]
    tap = AudioTap(ScriptedAudioTrack(frames), None)
    first, second = tap.subscribe(), tap.subscribe()
    assert tap.consumers == 2

    assert await read_all(first) == [*frames, None]
    assert await read_all(second) == [*frames, None]
    assert tap.dropped == 0


async def test_slow_subscriber_keeps_the_newest_frames_without_holding_up_others() -> None:
    frames = [audio_frame(i) for i in range(10)]
    track = ScriptedAudioTrack(frames, hold=True)
    tap = AudioTap(track, None)
    fast = tap.subscribe()
    slow = tap.subscribe(maxsize=2)

    fast_frames = [await asyncio.wait_for(fast.get(), LIVENESS_TIMEOUT) for _ in frames]
    await asyncio.wait_for(track.drained.wait(), LIVENESS_TIMEOUT)
    assert fast_frames == frames
    assert slow.qsize() == 2
    assert tap.dropped == len(frames) - 2

    track.release.set()  # the publisher goes away
    assert await asyncio.wait_for(fast.get(), LIVENESS_TIMEOUT) is None
    # a full queue still learns the stream ended; it gave up one more frame for that
    assert queued(slow) == [frames[-1], None]
    assert tap.dropped == len(frames) - 1


async def test_first_subscriber_switches_decoding_on() -> None:
    receiver_tap = SimpleNamespace(decode=False)
    track = ScriptedAudioTrack([audio_frame(0)], hold=True)
    tap = AudioTap(track, receiver_tap)  # type: ignore[arg-type]
    assert receiver_tap.decode is False  # nobody listens yet: Opus is not decoded

    q = tap.subscribe()
    assert receiver_tap.decode is True
    assert await asyncio.wait_for(q.get(), LIVENESS_TIMEOUT) is not None
    await tap.close()


async def test_unsubscribed_queue_receives_nothing_more() -> None:
    frames = [audio_frame(i) for i in range(5)]
    track = ScriptedAudioTrack(frames, hold=True)
    tap = AudioTap(track, None)
    stays, goes = tap.subscribe(), tap.subscribe()
    tap.unsubscribe(goes)
    assert tap.consumers == 1

    track.release.set()
    assert await read_all(stays) == [*frames, None]
    assert goes.empty()


async def test_close_ends_every_subscriber() -> None:
    track = ScriptedAudioTrack([], hold=True)  # a live publisher that is silent for now
    tap = AudioTap(track, None)
    first, second = tap.subscribe(), tap.subscribe()
    await asyncio.wait_for(track.drained.wait(), LIVENESS_TIMEOUT)
    await tap.close()
    assert queued(first) == [None]
    assert queued(second) == [None]


async def test_subscriber_arriving_after_the_end_is_told_so() -> None:
    frames = [audio_frame(i) for i in range(3)]
    tap = AudioTap(ScriptedAudioTrack(frames), None)
    early = tap.subscribe()
    assert await read_all(early) == [*frames, None]

    late = tap.subscribe()  # e.g. captions switched on after the publisher's track ended
    assert await read_all(late) == [None]


async def test_holes_from_dtx_and_loss_are_filled_with_silence() -> None:
    """A silent microphone with Opus DTX sends a frame every ~400 ms: captions must still hear
    the pause (their voice detection ends an utterance on it), so the timeline stays whole."""
    frames = [audio_frame(0), audio_frame(1), audio_frame(21), audio_frame(22)]  # 19 frames missing
    tap = AudioTap(ScriptedAudioTrack(frames), None)
    got = [f for f in await read_all(tap.subscribe()) if f is not None]

    assert got[:2] == frames[:2] and got[-2:] == frames[-2:]
    filler = got[2:-2]
    assert sum(f.samples for f in filler) == 19 * 960 == tap.filled
    assert all(not f.to_ndarray().any() for f in filler)
    # contiguous: each frame starts where the previous one ended
    assert all(b.pts == a.pts + a.samples for a, b in itertools.pairwise(got))


async def test_a_long_absence_or_a_timestamp_reset_is_not_filled() -> None:
    late = audio_frame(0)
    late.pts = 48000 * 60  # a minute later: the publisher paused, this is no pause to replay
    back = audio_frame(0)
    back.pts = 5  # timestamps went backwards (a new stream)
    frames = [audio_frame(0), late, back]
    tap = AudioTap(ScriptedAudioTrack(frames), None)
    assert await read_all(tap.subscribe()) == [*frames, None]
    assert tap.filled == 0


async def test_timestamps_that_wrap_around_are_not_a_hole() -> None:
    before, after = audio_frame(0), audio_frame(0)
    before.pts = 2**32 - 960
    after.pts = 0
    tap = AudioTap(ScriptedAudioTrack([before, after]), None)
    assert await read_all(tap.subscribe()) == [before, after, None]
    assert tap.filled == 0
