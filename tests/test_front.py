"""unionhub/front.py and `unionhub front-config`: the nginx configuration that fronts a cluster
is accepted by Debian's nginx, routes each node's name to that node only, and bad node
specifications are refused with a message."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from nginxkit import NGINX, free_port, require_nginx, running_nginx
from unionhub.cli import main
from unionhub.front import Node, nginx_config, nginx_site

NODES = [Node.parse("n1=127.0.0.1:8081"), Node.parse("core-2=10.0.0.2:8080")]


def test_nginx_accepts_the_generated_configuration(tmp_path: Path) -> None:
    require_nginx()
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config(NODES, "127.0.0.1:18080", tmp_path))
    checked = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e.log")],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


def test_each_node_name_routes_to_that_node_and_the_rest_to_any() -> None:
    site = nginx_site(NODES, "443 ssl", server_extra="server_name hub.example.org;")
    assert "n1 hub_node_n1;" in site and "core-2 hub_node_core_2;" in site
    assert "upstream hub_node_n1 { server 127.0.0.1:8081; }" in site
    assert "upstream hub_node_core_2 { server 10.0.0.2:8080; }" in site
    pool = site[site.index("upstream hub_any"):site.index("}", site.index("upstream hub_any"))]
    assert "127.0.0.1:8081" in pool and "10.0.0.2:8080" in pool
    assert "listen 443 ssl;" in site and "server_name hub.example.org;" in site
    assert "proxy_set_header Upgrade $http_upgrade;" in site


@pytest.mark.parametrize("text", ["n1", "n1=", "=127.0.0.1:80", "n 1=127.0.0.1:80", "n1=127.0.0.1", "n1=host;evil:80"])
def test_bad_node_specifications_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="ID=HOST:PORT"):
        Node.parse(text)


def test_duplicate_node_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="differ"):
        nginx_site([NODES[0], NODES[0]], "80")


def test_the_command_prints_the_site_or_says_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["front-config", "--node", "n1=127.0.0.1:8081", "--listen", "8080"]) == 0
    assert "listen 8080;" in capsys.readouterr().out
    assert main(["front-config", "--node", "n1"]) == 2
    assert "ID=HOST:PORT" in capsys.readouterr().err


async def test_nginx_routes_on_the_node_parameter_or_cookie_and_caches_live_hls(tmp_path: Path) -> None:
    """Real nginx with the generated configuration in front of two stand-in nodes: a request
    naming a node reaches that node (`?node=`, or the `uh_node` cookie a live page sets for its
    playlists' relative URLs); many viewers asking for one segment at once cost the node one
    request."""
    hits: dict[str, int] = {}

    def node_app(name: str) -> web.Application:
        async def hls(request: web.Request) -> web.Response:
            key = f"{name}:{request.match_info['file']}"
            hits[key] = hits.get(key, 0) + 1
            await asyncio.sleep(0.2)  # a node busy enough that viewers' requests overlap
            cache = "public, max-age=86400, immutable" if request.match_info["file"].endswith(".m4s") else "max-age=1"
            return web.Response(text=name, headers={"Cache-Control": cache})

        async def anything(request: web.Request) -> web.Response:
            return web.Response(text=name)

        app = web.Application()
        app.router.add_get("/live/{room}/hls/{file}", hls)
        app.router.add_get("/{tail:.*}", anything)
        return app

    runners = []
    nodes = []
    for name in ("n1", "n2"):
        runner = web.AppRunner(node_app(name))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        nodes.append(Node(name, f"127.0.0.1:{port}"))
    front = free_port()
    base = f"http://127.0.0.1:{front}"
    try:
        with running_nginx(tmp_path, nginx_config(nodes, f"127.0.0.1:{front}", tmp_path), front):
            await run_viewers(base, hits)
    finally:
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()


async def run_viewers(base: str, hits: dict[str, int]) -> None:
    """(the requests of the test above, through the running nginx)"""
    async with aiohttp.ClientSession() as http:
        async def get(path: str, node: str | None = None) -> tuple[str, str]:
            cookies = {"uh_node": node} if node else None
            async with http.get(base + path, cookies=cookies) as r:
                assert r.status == 200
                return await r.text(), r.headers.get("X-Cache", "")

        for name in ("n1", "n2"):
            assert (await get(f"/live/hall/hls/index.m3u8?node={name}"))[0] == name
            assert (await get("/live/hall/hls/video.m3u8", node=name))[0] == name, "the cookie routes"
            assert (await get(f"/r/hall?node={name}"))[0] == name
        answers = await asyncio.gather(*(get("/live/hall/hls/seg-0123abcd00001.m4s", node="n2") for _ in range(20)))
        assert {text for text, _ in answers} == {"n2"}
        assert hits["n2:seg-0123abcd00001.m4s"] == 1, "twenty viewers, one request to the node"
        assert (await get("/live/hall/hls/seg-0123abcd00001.m4s", node="n2"))[1] == "HIT"
