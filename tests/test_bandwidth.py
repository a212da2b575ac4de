"""Camera send limits (signalling/bandwidth.py, issue #12 item 4): the policy, and the hub
asking every browser in a room to cap its camera as cameras come and go or a host turns on a
"low bandwidth room"."""

from __future__ import annotations

from hubtest import RunningHub as Hub
from sigclient import Client, Connect
from signalling import bandwidth
from signalling.bandwidth import LOW_BANDWIDTH, CameraLimit, camera_limit


def test_few_cameras_are_not_capped() -> None:
    assert camera_limit(0, 8) is None
    assert camera_limit(1, 8) is None
    assert camera_limit(2, 8) is None  # one video of 1.4 Mbit/s each way: no cap worth asking


def test_more_cameras_share_the_download_budget() -> None:
    three = camera_limit(3, 8)
    assert three == CameraLimit(700_000, 1.0)
    thirty = camera_limit(30, 8)  # last-N: each participant receives 8 videos, whatever the count
    assert thirty is not None
    assert thirty.max_bitrate * 8 <= bandwidth.DOWNLOAD_BUDGET <= 1_500_000
    assert thirty.scale_down == 2.0  # 175 kbit/s: half the resolution
    assert camera_limit(30, 2) == CameraLimit(700_000, 1.0)  # a room N of 2: two videos each


def test_the_cap_never_goes_below_the_minimum() -> None:
    assert camera_limit(50, 25) == CameraLimit(bandwidth.MIN_BITRATE, 2.0)


def test_low_bandwidth_room_caps_even_two_cameras() -> None:
    assert camera_limit(2, 8, low_bandwidth=True) == LOW_BANDWIDTH
    assert LOW_BANDWIDTH.public() == {"maxBitrate": 200_000, "scaleResolutionDownBy": 2.0}


async def limits(client: Client) -> list[object]:
    await client.sync()
    return [d["camera"] for d in client.received("send-limits")]


async def test_the_room_is_told_as_cameras_come_and_the_host_turns_low_bandwidth_on(
    hub: Hub, connect: Connect
) -> None:
    host = await connect(hub.url)
    joined = await host.join("caps", "Host", video=True)
    assert joined["sendLimits"] == {"camera": None}
    assert joined["settings"]["lowBandwidth"] is False
    ana, bo = await connect(hub.url), await connect(hub.url)
    await ana.join("caps", "Ana", video=True)
    assert await limits(host) == []  # two cameras: no cap
    joined = await bo.join("caps", "Bo", video=True)
    three = {"maxBitrate": 700_000, "scaleResolutionDownBy": 1.0}
    assert joined["sendLimits"] == {"camera": three}
    assert await limits(host) == [three]
    assert await limits(ana) == [three]

    # Bo switches his camera off: two cameras again, the cap is lifted
    assert await bo.send("media-state", {"video": False}) == []
    assert await limits(host) == [three, None]

    # only hosts choose a low bandwidth room; a bad value is refused with a reason
    errors = await ana.send("settings", {"lowBandwidth": True})
    assert [e["code"] for e in errors] == ["forbidden"]
    errors = await host.send("settings", {"lowBandwidth": "yes"})
    assert [e["code"] for e in errors] == ["bad-request"]
    assert await host.send("settings", {"lowBandwidth": True}) == []
    low = LOW_BANDWIDTH.public()
    assert await limits(ana) == [three, None, low]
    settings = ana.received("settings")[-1]
    assert settings["lowBandwidth"] is True
    assert await host.send("settings", {"lowBandwidth": False}) == []
    assert (await limits(bo))[-1] is None

    # someone leaving changes the count too
    assert await bo.send("media-state", {"video": True}) == []
    assert (await limits(host))[-1] == three
    await bo.close()
    await host.sync()
    assert (await limits(host))[-1] is None
