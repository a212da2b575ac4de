"""Simultaneous interpretation on the real hub (issue #14): who hears which interpreter.

Real aiortc participants (testkit's ``HubClient``): the floor publishes a 440 Hz tone, Spanish
interpreters 880 Hz and 660 Hz. What a listener receives is decoded and its dominant frequency
measured, track by track: a Spanish listener hears the floor and the live Spanish interpreter, an
English listener and the floor speaker only the floor, whatever their clients ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import av
import numpy as np
import pytest

from hubtest import RunningHub
from sigclient import Connect, until
from signalling.auth import Security, TokenSigner
from testkit.rtc_client import HubClient, encode_test_audio
from unionhub import cli

SECRET = "interpretation-test-secret-long-enough-hs256"
MakeHub = Callable[..., Awaitable[RunningHub]]
FLOOR_HZ, LUCIA_HZ, LUIS_HZ = 440, 880, 660
TONES = (FLOOR_HZ, LUCIA_HZ, LUIS_HZ)


@pytest.fixture(scope="module")
def tones() -> dict[int, list[av.Packet]]:
    return {hz: encode_test_audio(seconds=4, hz=hz) for hz in (FLOOR_HZ, LUCIA_HZ, LUIS_HZ)}


class LinkClient(HubClient):
    """A ``HubClient`` that joins with a signed link."""

    def __init__(self, *args: Any, token: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token = token

    async def join(self, timeout: float = 10.0) -> None:
        await self.sio.connect(self.url, transports=["websocket"])
        await self.sio.emit("join", {"room": self.room, "token": self.token, "lang": self.lang,
                                     "audio": "mic" in self.tracks, "video": False})
        await asyncio.wait_for(self.joined.wait(), timeout)


def dominant_hz(frames: list[Any]) -> float:
    """The strongest frequency in the decoded audio of ``frames`` (encoded Opus)."""
    decoder = av.CodecContext.create("libopus", "r")
    samples: list[np.ndarray] = []
    rate = 48000
    for frame in frames:
        for decoded in decoder.decode(av.Packet(frame.data)):
            array = decoded.to_ndarray()
            channels = len(decoded.layout.channels)
            samples.append(array[0] if decoded.format.is_planar else array.reshape(-1, channels)[:, 0])
            rate = decoded.sample_rate
    signal = np.concatenate(samples).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[spectrum.argmax()])


def audio_slots(client: HubClient) -> dict[str, Any]:
    """The client's audio subscriptions now (by mid), with what each received so far."""
    return {
        mid: client.received[mid] for mid, slot in client.active_slots().items()
        if slot["kind"] == "audio" and mid in client.received
    }


def flowing(client: HubClient) -> set[str]:
    """Participants whose audio arrives on one of the client's current subscriptions."""
    return {rec.participant for rec in audio_slots(client).values() if rec.frames}


async def heard(client: HubClient, seconds: float = 1.0) -> dict[str, float]:
    """Whose audio reaches ``client`` over the next ``seconds``, and its dominant frequency."""
    start = {mid: len(rec.frames) for mid, rec in client.received.items()}
    await asyncio.sleep(seconds)
    out: dict[str, float] = {}
    for mid, rec in client.received.items():
        fresh = rec.frames[start.get(mid, 0):] if rec.kind == "audio" else []
        if len(fresh) >= 10:  # (≥ 200 ms of sound)
            out[rec.participant] = tone(dominant_hz(fresh))
    return out


def tone(hz: float) -> float:
    """The test tone ``hz`` is (within the FFT's resolution of a few Hz), else ``hz`` itself."""
    return next((t for t in TONES if abs(hz - t) <= 5), hz)


async def send(client: HubClient, event: str, data: Any) -> list[dict[str, Any]]:
    before = len(client.errors)
    await client.sio.call(event, data, timeout=10)
    return client.errors[before:]


def channels(client: HubClient) -> list[dict[str, Any]]:
    for event, data in reversed(client.events):
        if event == "interpretation":
            return list(data["channels"])
        if event == "joined":
            return list(data["interpretation"]["channels"])
    return []


def spanish(client: HubClient) -> dict[str, Any]:
    return next((c for c in channels(client) if c["lang"] == "es"), {"live": None, "interpreters": []})


async def test_a_spanish_listener_hears_floor_and_interpreter_the_floor_never_the_interpreter(
    hub: RunningHub, tones: dict[int, list[av.Packet]]
) -> None:
    floor = HubClient(hub.url, "ilo", "Fiona", lang="en", audio=tones[FLOOR_HZ])  # first in: hosts
    lucia = HubClient(hub.url, "ilo", "Lucía", lang="es", audio=tones[LUCIA_HZ])
    sofia = HubClient(hub.url, "ilo", "Sofía", lang="es")  # listeners, no microphone
    ed = HubClient(hub.url, "ilo", "Ed", lang="en")
    clients = [floor, lucia, sofia, ed]
    try:
        for c in clients:
            await c.join()
        # before Lucía interprets, her voice is the floor's like anyone's
        await until(lambda: flowing(ed) == {floor.id, lucia.id})
        assert await heard(ed) == {floor.id: FLOOR_HZ, lucia.id: LUCIA_HZ}

        assert await send(floor, "interpreter", {"id": lucia.id, "lang": "es"}) == []
        await until(lambda: [c["lang"] for c in channels(sofia)] == ["es"])
        assert channels(sofia)[0]["interpreters"] == [{"id": lucia.id, "name": "Lucía"}]
        assert channels(sofia)[0]["live"] is None
        # not live: nobody hears her, not even the Spanish channel
        await asyncio.sleep(0.5)  # (the renegotiation that drops her)
        for c in (floor, sofia, ed):
            assert lucia.id not in await heard(c, 0.6), c.name
        since = {c.name: len(c.events) for c in clients}  # (she may have been the floor's speaker before)

        assert await send(lucia, "booth", {"action": "live"}) == []
        await until(lambda: channels(sofia)[0]["live"] == lucia.id)
        # Sofía's own language has a channel: she hears it without asking, over the floor
        await until(lambda: lucia.id in flowing(sofia))
        assert await heard(sofia) == {floor.id: FLOOR_HZ, lucia.id: LUCIA_HZ}
        assert await heard(ed) == {floor.id: FLOOR_HZ}
        assert lucia.id not in await heard(floor)
        assert await heard(lucia) == {floor.id: FLOOR_HZ}  # the interpreter hears the floor

        # the floor asking for a channel that does not exist changes nothing
        assert [e["code"] for e in await send(floor, "audio-channel", {"channel": "xx"})] == ["no-channel"]
        assert lucia.id not in await heard(floor)
        assert lucia.id not in {slot["participant"] for slot in floor.active_slots().values()}

        # Ed picks Spanish, then the floor again
        assert await send(ed, "audio-channel", {"channel": "es"}) == []
        await until(lambda: lucia.id in flowing(ed))
        assert await heard(ed) == {floor.id: FLOOR_HZ, lucia.id: LUCIA_HZ}
        assert await send(ed, "audio-channel", {"channel": "floor"}) == []
        await asyncio.sleep(0.5)
        assert await heard(ed) == {floor.id: FLOOR_HZ}
        assert ("audio-channel", {"channel": "floor"}) in ed.events

        # the interpreter's voice never makes anyone's active speaker, even as the only voice left
        await floor.close()
        await asyncio.sleep(2.0)
        assert await heard(sofia) == {lucia.id: LUCIA_HZ}
        assert not any(e == "active-speaker" and d["id"] == lucia.id for c in clients for e, d in c.events[since[c.name]:])
    finally:
        for c in clients:
            await c.close()


async def test_hand_over_moves_the_channel_to_the_partner_and_never_leaves_two_live(
    hub: RunningHub, tones: dict[int, list[av.Packet]]
) -> None:
    host = HubClient(hub.url, "booth", "Hana", lang="en", audio=tones[FLOOR_HZ])
    lucia = HubClient(hub.url, "booth", "Lucía", lang="es", audio=tones[LUCIA_HZ])
    luis = HubClient(hub.url, "booth", "Luis", lang="es", audio=tones[LUIS_HZ])
    sofia = HubClient(hub.url, "booth", "Sofía", lang="es")
    amal = HubClient(hub.url, "booth", "Amal", lang="ar", audio=tones[FLOOR_HZ])  # the Arabic booth, by relay
    clients = [host, lucia, luis, sofia, amal]
    try:
        for c in clients:
            await c.join()
        for partner in (lucia, luis):
            assert await send(host, "interpreter", {"id": partner.id, "lang": "es"}) == []
        assert await send(host, "interpreter", {"id": amal.id, "lang": "ar"}) == []
        assert await send(amal, "audio-channel", {"channel": "es"}) == []  # relay: interpreting the Spanish
        assert await send(lucia, "booth", {"action": "live"}) == []
        # her partner cannot take the microphone while she has it
        assert [e["code"] for e in await send(luis, "booth", {"action": "live"})] == ["booth-busy"]
        assert [e["code"] for e in await send(luis, "booth", {"action": "handover"})] == ["booth-not-live"]
        await until(lambda: spanish(sofia)["live"] == lucia.id)
        await until(lambda: lucia.id in flowing(sofia))
        assert await heard(sofia) == {host.id: FLOOR_HZ, lucia.id: LUCIA_HZ}

        assert await send(lucia, "booth", {"action": "handover"}) == []  # the only partner
        await until(lambda: spanish(sofia)["live"] == luis.id)
        await until(lambda: luis.id in flowing(sofia))
        await asyncio.sleep(0.5)
        assert await heard(sofia) == {host.id: FLOOR_HZ, luis.id: LUIS_HZ}
        assert await heard(amal) == {host.id: FLOOR_HZ, luis.id: LUIS_HZ}  # relay follows the hand-over
        # the room was told Lucía, then Luis: no state in between with nobody live
        lives = [c["live"] for e, d in sofia.events if e == "interpretation" for c in d["channels"] if c["lang"] == "es"]
        assert lives[-2:] == [lucia.id, luis.id]

        # the live interpreter leaves: the channel says nobody is live, listeners hear the floor
        await luis.close()
        await until(lambda: spanish(sofia)["live"] is None)
        assert [i["id"] for i in spanish(sofia)["interpreters"]] == [lucia.id]
        assert await heard(sofia) == {host.id: FLOOR_HZ}
    finally:
        for c in clients:
            await c.close()


async def test_only_hosts_make_interpreters_and_only_interpreters_work_a_booth(hub: RunningHub, connect: Connect) -> None:
    host, sam, vic = await connect(hub.url), await connect(hub.url), await connect(hub.url)
    await host.join("auth", "Hana", audio=True)
    s = await sam.join("auth", "Sam", audio=True)
    await vic.join("auth", "Vic", audio=True)
    host_id = next(d["id"] for e, d in host.events if e == "joined")

    errors = await sam.send("interpreter", {"id": s["id"], "lang": "es"})
    assert [e["code"] for e in errors] == ["forbidden"]
    errors = await sam.send("interpreter", {"id": host_id, "lang": "es"})
    assert [e["code"] for e in errors] == ["forbidden"]
    assert [e["code"] for e in await sam.send("booth", {"action": "live"})] == ["not-interpreter"]
    assert [e["code"] for e in await sam.send("interpreter", {"id": s["id"], "lang": "Spanish"})] == ["bad-lang"]
    assert not host.received("interpretation")

    listener = await connect(hub.url)
    listener_id = (await listener.join("auth", "Lee"))["id"]  # no microphone
    assert [e["code"] for e in await host.send("interpreter", {"id": listener_id, "lang": "es"})] == ["no-microphone"]

    assert await host.send("interpreter", {"id": s["id"], "lang": "es"}) == []
    state = await vic.wait_for("interpretation")
    assert state == {"channels": [{"lang": "es", "interpreters": [{"id": s["id"], "name": "Sam"}], "live": None}]}
    assert await sam.send("booth", {"action": "live"}) == []
    # a host demoting the interpreter to viewer ends their interpreting
    assert await host.send("role", {"id": s["id"], "role": "viewer"}) == []
    await vic.wait_for("interpretation", lambda d: d["channels"] == [])
    assert [e["code"] for e in await vic.send("audio-channel", {"channel": "es"})] == ["no-channel"]


async def test_an_interpreter_whose_connection_drops_comes_back_to_the_booth(hub: RunningHub, connect: Connect) -> None:
    host = await connect(hub.url)
    await host.join("resume", "Hana")
    client = "browser-of-lucia-01"
    first = await connect(hub.url)
    lucia = (await first.join("resume", "Lucía", audio=True, client=client))["id"]
    assert await host.send("interpreter", {"id": lucia, "lang": "es"}) == []
    await first.close()  # her connection drops
    await host.wait_for("interpretation", lambda d: d["channels"] == [])
    again = await connect(hub.url)
    joined = await again.join("resume", "Lucía", audio=True, client=client)
    assert joined["interpretation"]["channels"] == [
        {"lang": "es", "interpreters": [{"id": joined["id"], "name": "Lucía"}], "live": None}
    ]
    # removed by a host, the same browser comes back as no interpreter
    assert await host.send("remove", {"id": joined["id"], "ban": False}) == []
    third = await connect(hub.url)
    assert (await third.join("resume", "Lucía", audio=True, client=client))["interpretation"] == {"channels": []}


async def test_a_signed_interpreter_link_makes_its_holder_an_interpreter(make_hub: MakeHub, connect: Connect) -> None:
    hub = await make_hub(security=Security(signer=TokenSigner(SECRET)))
    host = await connect(hub.url)
    await host.join("link", "Hana")
    token = TokenSigner(SECRET).create("link", "interpreter", "Lucía", lang="es")
    lucia = await connect(hub.url)
    joined = await lucia.join("link", "", audio=True, token=token)
    assert joined["role"] == "speaker" and joined["verified"]
    assert joined["interpretation"]["channels"] == [
        {"lang": "es", "interpreters": [{"id": joined["id"], "name": "Lucía"}], "live": None}
    ]
    await host.wait_for("interpretation", lambda d: len(d["channels"]) == 1)
    assert await lucia.send("booth", {"action": "live"}) == []
    with pytest.raises(ValueError, match="lang"):
        TokenSigner(SECRET).create("link", "interpreter", "Luis")


async def test_interpreter_links_come_from_the_api_and_the_command(make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    key = "interpretation-api-key-0123456789"
    hub = await make_hub(security=Security(signer=TokenSigner(SECRET), api_key=key))
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http:
        body = {"room": "congress", "role": "interpreter", "lang": "ar", "name": "Amal"}
        async with http.post(f"{hub.url}/api/tokens", json=body, headers=headers) as response:
            assert response.status == 200
            token = (await response.json())["token"]
        async with http.post(f"{hub.url}/api/tokens", json={**body, "lang": None}, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "bad-request"
    grant = TokenSigner(SECRET).verify(token, "congress")
    assert (grant.role, grant.interprets, grant.name) == ("speaker", "ar", "Amal")

    monkeypatch.setenv("UNIONHUB_JWT_SECRET", SECRET)
    argv = ["token", "create", "--room", "R", "--role", "interpreter", "--lang", "es", "--name", "Lucía"]
    assert cli.main(argv) == 0
    query = parse_qs(urlsplit(capsys.readouterr().out.strip()).query)
    assert TokenSigner(SECRET).verify(query["token"][0], "R").interprets == "es"
    assert cli.main(argv[:6] + argv[8:]) == 2  # an interpreter without a language
    assert "lang" in capsys.readouterr().err


def band_energy(path: Any, hz: float) -> float:
    """Energy of a composed recording's audio around ``hz`` (±20 Hz)."""
    samples = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            samples.append(frame.to_ndarray().reshape(-1)[: frame.samples])
            rate = frame.sample_rate
    signal = np.concatenate(samples).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / rate)
    return float(spectrum[(freqs > hz - 20) & (freqs < hz + 20)].sum())


async def test_the_floor_s_recording_does_not_mix_in_a_live_interpreter(
    hub: RunningHub, tones: dict[int, list[av.Packet]]
) -> None:
    floor = HubClient(hub.url, "rec-floor", "Fiona", lang="en", audio=tones[FLOOR_HZ])
    lucia = HubClient(hub.url, "rec-floor", "Lucía", lang="es", audio=tones[LUCIA_HZ])
    try:
        for c in (floor, lucia):
            await c.join()
        assert await send(floor, "interpreter", {"id": lucia.id, "lang": "es"}) == []
        assert await send(lucia, "booth", {"action": "live"}) == []
        await floor.sio.call("record", {"on": True}, timeout=10)
        await until(lambda: any(e == "recording" and d["on"] for e, d in floor.events))
        rec_id = next(d["id"] for e, d in floor.events if e == "recording" and d["on"])
        await asyncio.sleep(3.0)
        await floor.sio.call("record", {"on": False}, timeout=10)
    finally:
        for c in (floor, lucia):
            await c.close()
    assert hub.archive is not None and hub.recordings is not None
    for _ in range(240):
        rec = await hub.archive.get(rec_id)
        if rec is not None and rec.status in ("ready", "failed"):
            break
        await asyncio.sleep(0.5)
    assert rec is not None and rec.status == "ready", rec
    audio = hub.recordings.root / rec_id / "audio.m4a"
    floor_energy, lucia_energy = band_energy(audio, FLOOR_HZ), band_energy(audio, LUCIA_HZ)
    assert floor_energy > 0 and lucia_energy < floor_energy / 100, (floor_energy, lucia_energy)


async def test_mute_all_mutes_the_floor_not_the_interpreters(hub: RunningHub, tones: dict[int, list[av.Packet]]) -> None:
    host = HubClient(hub.url, "mute-all", "Hana", lang="en")  # first in: hosts (no microphone)
    floor = HubClient(hub.url, "mute-all", "Fiona", lang="en", audio=tones[FLOOR_HZ])
    lucia = HubClient(hub.url, "mute-all", "Lucía", lang="es", audio=tones[LUCIA_HZ])
    sofia = HubClient(hub.url, "mute-all", "Sofía", lang="es")
    clients = [host, floor, lucia, sofia]
    try:
        for c in clients:
            await c.join()
        assert await send(host, "interpreter", {"id": lucia.id, "lang": "es"}) == []
        assert await send(lucia, "booth", {"action": "live"}) == []
        await until(lambda: lucia.id in flowing(sofia))
        assert await send(host, "mute", {"all": True}) == []
        await until(lambda: any(e == "muted" for e, _ in floor.events))
        await asyncio.sleep(0.5)  # (anything already on its way)
        assert await heard(sofia) == {lucia.id: LUCIA_HZ}, "the interpreter keeps interpreting; the floor is muted"
        assert not any(e == "muted" for e, _ in lucia.events)
    finally:
        for c in clients:
            await c.close()
