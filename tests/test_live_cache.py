"""Cache headers of live HLS files (issue #13 item 6): with a cache in front (nginx, a CDN), a
playlist may be reused for a second, a segment forever — its name is unique to its stream, so a
viewer of the room's next stream never gets an earlier stream's segment. (A real stream's files
are checked the same way in tests/test_shutdown.py.)"""

from __future__ import annotations

from pathlib import Path

from pytest_aiohttp import AiohttpClient

from unionhub.app import LIVE_KEY, create_app

IMMUTABLE = "public, max-age=86400, immutable"


async def test_playlists_are_cached_for_a_second_and_prefixed_segments_forever(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    app = create_app(tmp_path / "hub")
    client = await aiohttp_client(app)
    folder = app[LIVE_KEY].manager.folder("rally")
    folder.mkdir(parents=True)
    expected = {
        "index.m3u8": "max-age=1",
        "video.m3u8": "max-age=1",
        "sub_es.m3u8": "max-age=1",
        "init-0a1b2c3d.mp4": IMMUTABLE,
        "seg-0a1b2c3d00042.m4s": IMMUTABLE,
        "sub_es-0a1b2c3d_00042.vtt": IMMUTABLE,
        "sub_pt-BR-0a1b2c3d_00042.vtt": IMMUTABLE,
        # names without a stream's prefix would be reused by the next stream: short-lived
        "init.mp4": "max-age=60",
        "seg00042.m4s": "max-age=60",
        "sub_es_00042.vtt": "max-age=60",
    }
    for name in expected:
        (folder / name).write_bytes(b"x")
    for name, cache in expected.items():
        async with client.get(f"/live/rally/hls/{name}") as r:
            assert r.status == 200, name
            assert r.headers["Cache-Control"] == cache, name
    async with client.get("/live/rally/hls/seg-0a1b2c3d00043.m4s") as r:  # not written yet
        assert r.status == 404 and "immutable" not in r.headers.get("Cache-Control", "")
