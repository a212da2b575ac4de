"""Signed join links, ICE/TURN configuration and the token CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from signalling.auth import IceConfig, IceServer, TokenSigner, api_key_matches, turn_rest_credentials
from signalling.validation import SignallingError

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
ROOT = Path(__file__).resolve().parents[1]


def refused(fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SignallingError) as info:
        fn(*args)
    assert info.value.code == "bad-token" and info.value.message
    return info.value.message


def test_a_link_grants_its_room_role_and_name() -> None:
    signer = TokenSigner(SECRET)
    grant = signer.verify(signer.create("branch-7", "host", "Ana Lima", ttl=60, lang="pt"), "branch-7")
    assert (grant.room, grant.role, grant.name, grant.lang) == ("branch-7", "host", "Ana Lima", "pt")
    assert grant.jti and time.time() < grant.expires <= time.time() + 61


def test_expired_forged_and_other_room_links_are_refused() -> None:
    signer = TokenSigner(SECRET)
    now = int(time.time())
    expired = jwt.encode({"room": "r", "role": "host", "name": "A", "exp": now - 3600}, SECRET, algorithm="HS256")
    assert "expired" in refused(signer.verify, expired, "r")
    forged = jwt.encode({"room": "r", "role": "host", "name": "A", "exp": now + 60},
                        "another-secret-that-is-also-long-enough", algorithm="HS256")
    refused(signer.verify, forged, "r")
    assert "another room" in refused(signer.verify, signer.create("r", "host", "A"), "other")
    early = jwt.encode({"room": "r", "role": "host", "name": "A", "exp": now + 7200, "nbf": now + 3600},
                       SECRET, algorithm="HS256")
    assert "not valid yet" in refused(signer.verify, early, "r")
    # alg=none, a tampered payload, a bad role, missing claims, garbage
    header, _payload, sig = signer.create("r", "speaker", "A").split(".")
    claims = jwt.decode(signer.create("r", "speaker", "A"), SECRET, algorithms=["HS256"])
    tampered = base64.urlsafe_b64encode(jwt.api_jws.json.dumps({**claims, "role": "host"}).encode()).rstrip(b"=")
    refused(signer.verify, f"{header}.{tampered.decode()}.{sig}", "r")
    refused(signer.verify, jwt.encode({**claims, "role": "admin"}, SECRET, algorithm="HS256"), "r")
    refused(signer.verify, jwt.encode({"room": "r", "role": "host", "exp": now + 60}, SECRET, algorithm="HS256"), "r")
    none_alg = jwt.encode({"room": "r", "role": "host", "name": "A", "exp": now + 60}, None, algorithm="none")
    refused(signer.verify, none_alg, "r")
    for junk in ("", "x" * 5000, "a.b.c", 42, None):
        refused(signer.verify, junk, "r")


def test_a_short_secret_is_refused_and_never_printed() -> None:
    with pytest.raises(ValueError):
        TokenSigner("short")
    assert SECRET not in repr(TokenSigner(SECRET))


def test_ice_servers_parse_and_turn_rest_credentials_verify() -> None:
    assert IceServer.parse("stun:stun.example.org:3478") == IceServer("stun:stun.example.org:3478")
    static = IceServer.parse("turns:ana:p%40ss@turn.example.org:5349?transport=tcp")
    assert (static.url, static.username, static.credential) == (
        "turns:turn.example.org:5349?transport=tcp", "ana", "p@ss")
    for bad in ("http://x", "turn:", "stun:user:pw@host", "turn:@host", "nope"):
        with pytest.raises(ValueError) as info:
            IceServer.parse(bad)
        assert "pw" not in str(info.value)
    config = IceConfig([IceServer.parse("stun:s.example.org"), IceServer.parse("turn:t.example.org:3478")],
                       turn_secret="turn-secret", ttl=600)
    stun, turn = config.for_participant("p1")
    assert stun == {"urls": "stun:s.example.org"}
    expiry, user = turn["username"].split(":")
    assert user == "p1" and 590 < int(expiry) - time.time() <= 600
    expected = base64.b64encode(hmac.new(b"turn-secret", turn["username"].encode(), hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected  # what coturn's use-auth-secret checks
    assert "turn-secret" not in repr(config)
    assert turn_rest_credentials("s", "u", 10, now=100)["username"] == "110:u"


def test_api_key_check() -> None:
    assert api_key_matches("k" * 20, "Bearer " + "k" * 20)
    assert not api_key_matches("k" * 20, "Bearer " + "k" * 19)
    assert not api_key_matches(None, "Bearer x")
    assert not api_key_matches("k", None)


def test_token_cli_prints_a_join_link_that_verifies() -> None:
    env = {**os.environ, "UNIONHUB_JWT_SECRET": SECRET}
    out = subprocess.run(
        [sys.executable, "-m", "unionhub.cli", "token", "create", "--room", "rally", "--role", "viewer",
         "--name", "Press desk", "--ttl", "120", "--url", "https://hub.example.org"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    url = urlsplit(out.stdout.strip())
    assert (url.scheme, url.netloc, url.path) == ("https", "hub.example.org", "/")
    query = parse_qs(url.query)
    assert query["room"] == ["rally"]
    grant = TokenSigner(SECRET).verify(query["token"][0], "rally")
    assert (grant.role, grant.name) == ("viewer", "Press desk")
    no_secret = {k: v for k, v in os.environ.items() if k != "UNIONHUB_JWT_SECRET"}
    out = subprocess.run([sys.executable, "-m", "unionhub.cli", "token", "create", "--room", "r", "--name", "A"],
                         env=no_secret, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "UNIONHUB_JWT_SECRET" in out.stderr
