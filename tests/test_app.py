"""The assembled hub's HTTP surface: security headers on every page and API answer."""

from __future__ import annotations

from pathlib import Path

from pytest_aiohttp import AiohttpClient

from unionhub.app import create_app


async def test_pages_and_apis_carry_strict_security_headers(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_app(tmp_path / "hub"))
    for path in ("/", "/r/branch-7", "/recordings", "/live/branch-7", "/api/recordings", "/healthz",
                 "/static/app.js", "/no-such-page"):
        async with client.get(path) as r:
            headers = r.headers
            csp = headers.get("Content-Security-Policy", "")
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, (
                path, csp)
            assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, (path, csp)
            assert headers.get("X-Frame-Options") == "DENY", path
            assert headers.get("X-Content-Type-Options") == "nosniff", path
            # a signed link's token in the address bar never leaks to other sites
            assert headers.get("Referrer-Policy") == "no-referrer", path
            assert "camera=(self)" in headers.get("Permissions-Policy", ""), path
