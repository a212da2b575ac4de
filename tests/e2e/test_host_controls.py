"""Roles, access and host controls end to end (docs/PROTOCOL.md "Roles, access and host controls").

Real browsers against the real hub: the lobby (knock, admit, reject, cancel), removing with a ban,
muting, roles (viewer, host), room settings (passcode, lock, who may record), ending the meeting
and signed join links. Every check looks at what the users see, and at the server's answers where
the UI alone could be fooled (e.g. a rejected knocker must never have been joined).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from e2e_helpers import (
    WAIT_MS,
    joined_id,
    participant,
    poll,
    room_url,
    unique_room,
    wait_remote_videos,
)

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

JWT_SECRET = "e2e-moderation-secret-0123456789"

# Every `participant-joined` a page receives (names), to prove someone never got in.
SPY_JOINS_JS = """() => {
    window.__joins = [];
    window.unionhub.socket.on('participant-joined', (p) => window.__joins.push(p && p.name));
}"""


# Whether a page has left the call for good: `left` (the page's own retry after a server's
# disconnect, web_client/app.js, gives up on it) and a socket that does not reconnect by itself.
GONE_FOR_GOOD_JS = """() => ({left: window.unionhub.state.left, active: window.unionhub.socket.active,
                             connected: window.unionhub.socket.connected})"""


def open_room(page: Any, base: str, room: str, name: str, **kwargs: Any) -> Any:
    page.goto(room_url(base, room, name, **kwargs))
    return page


def enter(page: Any, base: str, room: str, name: str, **kwargs: Any) -> str:
    """Join and wait for the server's `joined`; the participant id."""
    open_room(page, base, room, name, **kwargs)
    return joined_id(page)


def entry(page: Any, name: str) -> Any:
    return participant(page, name)


def lobby_entry(page: Any, name: str) -> Any:
    return page.locator(f'[data-testid="lobby-entry"][data-name="{name}"]')


def set_access(host: Any, access: str) -> None:
    host.get_by_test_id("room-access").select_option(access)
    expect(host.get_by_test_id("host-controls")).to_have_attribute("data-access", access)


def sign_token(room: str, role: str, name: str, ttl: int = 600, secret: str = JWT_SECRET) -> str:
    """An HS256 join link token, as an integration would sign it."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"room": room, "role": role, "name": name, "iat": now,
                             "exp": now + ttl, "jti": f"{role}-{name}-{now}"}).encode())
    signature = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(signature)}"


def test_lobby_admit_reject_and_cancel(hub, new_page):
    room = unique_room("lobby")
    ana = new_page()
    enter(ana, hub.url, room, "Ana")
    expect(ana.get_by_test_id("my-role")).to_contain_text("host")
    expect(ana.get_by_test_id("host-controls")).to_be_visible()
    set_access(ana, "lobby")
    ana.evaluate(SPY_JOINS_JS)

    # Ben knocks: he waits, and is not in the room yet.
    ben = open_room(new_page(), hub.url, room, "Ben")
    expect(ben.get_by_test_id("lobby-waiting")).to_be_visible(timeout=WAIT_MS)
    expect(ben.get_by_test_id("lobby-waiting")).to_contain_text("Waiting for a host to let you in")
    assert ben.evaluate("() => window.unionhub.state.myId") is None

    # Ana sees the knock (alert + list) and lets him in.
    expect(ana.get_by_test_id("lobby-alert")).to_have_text("1 waiting")
    expect(ana).to_have_title(f"(1) {room} — unionhub")
    expect(lobby_entry(ana, "Ben")).to_have_count(1)
    expect(ana.get_by_test_id("participant")).to_have_count(1)
    lobby_entry(ana, "Ben").get_by_test_id("lobby-admit").click()

    joined_id(ben)
    expect(ben.get_by_test_id("lobby-waiting")).to_be_hidden()
    for page in (ana, ben):
        expect(page.get_by_test_id("participant")).to_have_count(2)
        wait_remote_videos(page, 1)
    expect(ana.get_by_test_id("lobby-entry")).to_have_count(0)
    expect(ana.get_by_test_id("lobby-alert")).to_be_hidden()
    expect(ana).to_have_title(f"{room} — unionhub")
    expect(ben.get_by_test_id("host-controls")).to_be_hidden()  # Ben is a speaker

    # Chiara knocks and is turned away: she is told, and never joins anyone's call.
    chiara = open_room(new_page(), hub.url, room, "Chiara")
    expect(chiara.get_by_test_id("lobby-waiting")).to_be_visible(timeout=WAIT_MS)
    expect(lobby_entry(ana, "Chiara")).to_have_count(1)
    lobby_entry(ana, "Chiara").get_by_test_id("lobby-reject").click()
    expect(chiara.get_by_test_id("lobby-rejected")).to_be_visible(timeout=WAIT_MS)
    expect(chiara.get_by_test_id("lobby-rejected")).to_contain_text("not let in")
    expect(chiara.get_by_test_id("lobby-waiting")).to_be_hidden()
    expect(ana.get_by_test_id("lobby-entry")).to_have_count(0)
    assert chiara.evaluate("() => window.unionhub.state.myId") is None
    assert chiara.evaluate("() => window.unionhub.socket.connected") is False  # no retry

    # Dan knocks; Ben, made a host meanwhile, sees him waiting too. Dan gives up: the hosts'
    # lists forget him.
    dan = open_room(new_page(), hub.url, room, "Dan")
    expect(dan.get_by_test_id("lobby-waiting")).to_be_visible(timeout=WAIT_MS)
    expect(lobby_entry(ana, "Dan")).to_have_count(1)
    expect(ben.get_by_test_id("lobby-entry")).to_have_count(0)
    entry(ana, "Ben").get_by_test_id("host-role").select_option("host")
    expect(ben.get_by_test_id("host-controls")).to_be_visible(timeout=WAIT_MS)
    expect(lobby_entry(ben, "Dan")).to_have_count(1)
    expect(ben.get_by_test_id("lobby-alert")).to_have_text("1 waiting")
    dan.get_by_test_id("lobby-cancel").click()
    expect(dan.get_by_test_id("lobby-waiting")).to_be_hidden()
    for page in (ana, ben):
        expect(lobby_entry(page, "Dan")).to_have_count(0, timeout=WAIT_MS)
        expect(page.get_by_test_id("lobby-alert")).to_be_hidden()

    for page in (ana, ben):
        expect(page.get_by_test_id("participant")).to_have_count(2)
        expect(entry(page, "Chiara")).to_have_count(0)
        expect(entry(page, "Dan")).to_have_count(0)
    assert ana.evaluate("() => window.__joins") == ["Ben"]


def test_host_removes_with_ban(hub, new_page):
    room = unique_room("remove")
    ana = new_page()
    enter(ana, hub.url, room, "Ana")
    ben = new_page()
    enter(ben, hub.url, room, "Ben")
    expect(ana.get_by_test_id("participant")).to_have_count(2)
    # Only hosts get host controls.
    expect(ben.get_by_test_id("host-remove")).to_have_count(0)
    expect(ben.get_by_test_id("host-controls")).to_be_hidden()
    expect(entry(ana, "Ana").get_by_test_id("host-remove")).to_have_count(0)  # not on myself

    # Cancelling the dialog removes nobody.
    entry(ana, "Ben").get_by_test_id("host-remove").click()
    dialog = ana.get_by_test_id("remove-confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Ben")
    ana.get_by_test_id("remove-cancel").click()
    expect(dialog).to_be_hidden()
    expect(entry(ana, "Ben")).to_have_count(1)
    expect(ben.get_by_test_id("removed")).to_be_hidden()

    entry(ana, "Ben").get_by_test_id("host-remove").click()
    ana.get_by_test_id("remove-ban").check()
    ana.get_by_test_id("remove-confirm-button").click()
    expect(dialog).to_be_hidden()

    expect(ben.get_by_test_id("removed")).to_be_visible(timeout=WAIT_MS)
    expect(ben.get_by_test_id("removed")).to_contain_text("You were removed from the meeting")
    expect(ben.get_by_test_id("remote-video")).to_have_count(0)
    expect(entry(ana, "Ben")).to_have_count(0, timeout=WAIT_MS)
    expect(ana.get_by_test_id("participant")).to_have_count(1)
    # The removed page does not reconnect (after a plain disconnect it would, 2 s later): it has
    # left for good, which that retry checks, and its socket no longer reconnects by itself.
    assert ben.evaluate(GONE_FOR_GOOD_JS) == {"left": True, "active": False, "connected": False}
    expect(ben.get_by_test_id("removed")).to_be_visible()
    expect(entry(ana, "Ben")).to_have_count(0)

    # The same browser cannot come back, even under another name…
    again = ben.context.new_page()
    open_room(again, hub.url, room, "Benjamin")
    expect(again.get_by_test_id("banned")).to_be_visible(timeout=WAIT_MS)
    expect(again.get_by_test_id("banned")).to_contain_text("cannot rejoin")
    assert again.evaluate("() => window.unionhub.state.myId") is None
    # …nor can the name from another browser; someone else still can.
    other = open_room(new_page(), hub.url, room, "Ben")
    expect(other.get_by_test_id("banned")).to_be_visible(timeout=WAIT_MS)
    carla = new_page()
    enter(carla, hub.url, room, "Carla")
    expect(ana.get_by_test_id("participant")).to_have_count(2)
    expect(entry(ana, "Benjamin")).to_have_count(0)


def test_host_mutes_and_stops_camera(hub, new_page):
    room = unique_room("mute")
    ana = new_page()
    enter(ana, hub.url, room, "Ana")
    ben = new_page()
    enter(ben, hub.url, room, "Ben")
    expect(entry(ana, "Ben")).to_have_attribute("data-audio", "true")
    expect(ben.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "false")

    entry(ana, "Ben").get_by_test_id("host-mute").click()
    expect(ben.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    expect(ben.get_by_test_id("notice")).to_contain_text("muted you")
    expect(ben.get_by_test_id("notice")).to_contain_text("Ana")
    assert ben.evaluate("() => window.unionhub.state.mic.enabled") is False
    expect(entry(ana, "Ben")).to_have_attribute("data-audio", "false")
    expect(entry(ana, "Ben").get_by_test_id("host-mute")).to_be_disabled()
    expect(ana.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "false")  # not the host

    # Ben may unmute himself.
    ben.get_by_test_id("mic-toggle").click()
    expect(ben.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "false")
    expect(entry(ana, "Ben")).to_have_attribute("data-audio", "true")
    expect(ben.get_by_test_id("notice")).to_be_hidden()

    # "Mute all" mutes everyone but the host.
    ana.get_by_test_id("host-mute-all").click()
    expect(ben.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    expect(ana.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "false")

    # Stop camera: Ben's camera toggle and the host's view of him.
    wait_remote_videos(ana, 1)
    entry(ana, "Ben").get_by_test_id("host-stop-camera").click()
    expect(ben.get_by_test_id("camera-toggle")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    expect(ben.get_by_test_id("notice")).to_contain_text("camera")
    expect(entry(ana, "Ben")).to_have_attribute("data-video", "false")


def test_roles_permissions_and_end(hub, new_page):
    room = unique_room("roles")
    ana = new_page()
    enter(ana, hub.url, room, "Ana")
    ben = new_page()
    ben_id = enter(ben, hub.url, room, "Ben")
    expect(entry(ana, "Ana")).to_have_attribute("data-role", "host")
    expect(entry(ana, "Ana").get_by_test_id("role-badge")).to_have_text("Host")
    expect(entry(ben, "Ana").get_by_test_id("role-badge")).to_have_text("Host")
    expect(entry(ben, "Ben")).to_have_attribute("data-role", "speaker")
    # Self-declared names are marked as such.
    expect(entry(ana, "Ben").get_by_test_id("unverified")).to_be_visible()

    # Only hosts record by default; the host lets everyone.
    expect(ana.get_by_test_id("record-toggle")).to_be_visible()
    expect(ben.get_by_test_id("record-toggle")).to_be_hidden()
    ana.get_by_test_id("room-record").select_option("everyone")
    expect(ben.get_by_test_id("record-toggle")).to_be_visible(timeout=WAIT_MS)
    ana.get_by_test_id("room-record").select_option("hosts")
    expect(ben.get_by_test_id("record-toggle")).to_be_hidden(timeout=WAIT_MS)

    # Ben becomes a viewer: he stops publishing and sees it.
    wait_remote_videos(ana, 1)
    entry(ana, "Ben").get_by_test_id("host-role").select_option("viewer")
    expect(ben.get_by_test_id("my-role")).to_contain_text("viewer", timeout=WAIT_MS)
    expect(ben.get_by_test_id("mic-toggle")).to_be_disabled()
    expect(ben.get_by_test_id("camera-toggle")).to_be_disabled()
    expect(ben.get_by_test_id("screen-share")).to_be_disabled()
    expect(ben.get_by_test_id("notice")).to_contain_text("viewer")
    assert ben.evaluate("() => window.unionhub.state.mic") is None
    expect(entry(ana, "Ben").get_by_test_id("role-badge")).to_have_text("Viewer")
    expect(ana.get_by_test_id("remote-video")).to_have_count(0, timeout=WAIT_MS)
    expect(entry(ana, "Ben")).to_have_attribute("data-audio", "false")

    # Made a speaker again, Ben rejoins (his choice) to publish: he is heard and seen again.
    entry(ana, "Ben").get_by_test_id("host-role").select_option("speaker")
    expect(ben.get_by_test_id("my-role")).to_be_hidden(timeout=WAIT_MS)
    expect(ben.get_by_test_id("notice")).to_contain_text("speaker")
    expect(ben.get_by_test_id("mic-toggle")).to_be_disabled()
    ben.get_by_test_id("notice-action").click()
    poll(ben, "(old) => window.unionhub.state.myId && window.unionhub.state.myId !== old", ben_id,
         what="Ben's new join")
    expect(ben.get_by_test_id("mic-toggle")).to_be_enabled()
    expect(ben.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "false")
    expect(entry(ana, "Ben")).to_have_attribute("data-role", "speaker")
    expect(entry(ana, "Ben")).to_have_attribute("data-audio", "true")
    expect(ana.get_by_test_id("participant")).to_have_count(2)
    wait_remote_videos(ana, 1)

    # Ben is made a host: he gets the host controls (and Ana keeps hers).
    entry(ana, "Ben").get_by_test_id("host-role").select_option("host")
    expect(ben.get_by_test_id("host-controls")).to_be_visible(timeout=WAIT_MS)
    expect(ben.get_by_test_id("my-role")).to_contain_text("host")
    expect(entry(ben, "Ana").get_by_test_id("host-remove")).to_be_visible()
    expect(entry(ana, "Ben")).to_have_attribute("data-role", "host")

    # Ending the meeting asks first, then ends it for everyone; nobody reconnects.
    ana.get_by_test_id("host-end").click()
    expect(ana.get_by_test_id("end-confirm")).to_be_visible()
    ana.get_by_test_id("end-cancel").click()
    expect(ana.get_by_test_id("end-confirm")).to_be_hidden()
    expect(ben.get_by_test_id("ended")).to_be_hidden()
    ana.get_by_test_id("host-end").click()
    ana.get_by_test_id("end-confirm-button").click()
    for page in (ana, ben):
        expect(page.get_by_test_id("ended")).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_test_id("ended")).to_contain_text("The host ended the meeting for everyone")
    for page in (ana, ben):
        assert page.evaluate(GONE_FOR_GOOD_JS) == {"left": True, "active": False, "connected": False}


def test_passcode_and_lock(hub, new_page):
    room = unique_room("passcode")
    ana = new_page()
    enter(ana, hub.url, room, "Ana")
    ana.get_by_test_id("room-access").select_option("passcode")
    expect(ana.get_by_test_id("room-passcode")).to_be_visible()
    ana.get_by_test_id("room-passcode").fill("12")  # too short: the server says why
    ana.get_by_test_id("room-passcode-set").click()
    expect(ana.get_by_test_id("error")).to_contain_text("at least 4", timeout=WAIT_MS)
    expect(ana.get_by_test_id("host-controls")).to_have_attribute("data-access", "open")
    ana.get_by_test_id("room-access").select_option("passcode")
    ana.get_by_test_id("room-passcode").fill("4321")
    ana.get_by_test_id("room-passcode-set").click()
    expect(ana.get_by_test_id("host-controls")).to_have_attribute("data-access", "passcode")

    ben = open_room(new_page(), hub.url, room, "Ben")
    expect(ben.get_by_test_id("passcode-input")).to_be_visible(timeout=WAIT_MS)
    ben.get_by_test_id("passcode-input").fill("0000")
    ben.get_by_test_id("passcode-submit").click()
    expect(ben.get_by_test_id("passcode-message")).to_contain_text("not right", timeout=WAIT_MS)
    assert ben.evaluate("() => window.unionhub.state.myId") is None
    ben.get_by_test_id("passcode-input").fill("4321")
    ben.get_by_test_id("passcode-submit").click()
    joined_id(ben)
    expect(ben.get_by_test_id("passcode-input")).to_be_hidden()
    expect(ana.get_by_test_id("participant")).to_have_count(2)

    # A locked room turns everyone new away.
    ana.get_by_test_id("host-lock").click()
    expect(ana.get_by_test_id("host-lock")).to_have_attribute("aria-pressed", "true")
    chiara = open_room(new_page(), hub.url, room, "Chiara")
    expect(chiara.get_by_test_id("room-locked")).to_be_visible(timeout=WAIT_MS)
    assert chiara.evaluate("() => window.unionhub.state.myId") is None
    expect(ana.get_by_test_id("participant")).to_have_count(2)


def test_signed_links_roles_names_and_ice_servers(hub_factory, new_page, monkeypatch):
    monkeypatch.setenv("UNIONHUB_JWT_SECRET", JWT_SECRET)
    server = hub_factory("--asr-model", "none", "--ice-server", "stun:127.0.0.1:3478")
    room = unique_room("signed")

    # The host's link as `unionhub token create` prints it.
    link = subprocess.run(
        [str(Path(sys.executable).parent / "unionhub"), "token", "create", "--room", room, "--role", "host",
         "--name", "Maria Organiser", "--ttl", "600", "--url", server.url],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()
    assert link.startswith(f"{server.url}/?room={room}&token="), link
    host = new_page()
    host.goto(link)
    joined_id(host)
    expect(host.get_by_test_id("my-role")).to_contain_text("host")
    expect(entry(host, "Maria Organiser")).to_have_attribute("data-verified", "true")
    expect(host.get_by_test_id("local-video")).to_have_count(1)
    ice = host.evaluate("() => window.unionhub.pc.getConfiguration().iceServers")
    assert any("stun:127.0.0.1:3478" in (s["urls"] if isinstance(s["urls"], list) else [s["urls"]])
               for s in ice), ice

    viewer = new_page()
    viewer.goto(f"{server.url}/?room={quote(room)}&token={sign_token(room, 'viewer', 'Vera Viewer')}")
    joined_id(viewer)
    expect(viewer.get_by_test_id("my-role")).to_contain_text("viewer")
    expect(viewer.get_by_test_id("mic-toggle")).to_be_disabled()
    expect(viewer.get_by_test_id("local-video")).to_have_count(0)
    wait_remote_videos(viewer, 1)  # watches the host
    expect(entry(host, "Vera Viewer")).to_have_attribute("data-verified", "true")
    expect(entry(host, "Vera Viewer").get_by_test_id("role-badge")).to_have_text("Viewer")
    expect(entry(host, "Vera Viewer").get_by_test_id("unverified")).to_have_count(0)

    # A plain link: self-declared name, marked unverified.
    eve = new_page()
    enter(eve, server.url, room, "Eve")
    expect(entry(host, "Eve").get_by_test_id("unverified")).to_be_visible()

    # A link for another room, or signed with another secret, does not get in.
    forged = new_page()
    forged.goto(f"{server.url}/?room={quote(room)}&token="
                f"{sign_token(room, 'host', 'Mallory', secret='not-the-secret-0123456789')}")
    expect(forged.get_by_test_id("bad-token")).to_be_visible(timeout=WAIT_MS)
    elsewhere = new_page()
    elsewhere.goto(f"{server.url}/?room={quote(room)}&token={sign_token(room + 'x', 'host', 'Oscar')}")
    expect(elsewhere.get_by_test_id("bad-token")).to_be_visible(timeout=WAIT_MS)
    expect(host.get_by_test_id("participant")).to_have_count(3)

    # The host restricts the room to signed links: plain links are turned away, signed ones not.
    set_access(host, "token")
    plain = open_room(new_page(), server.url, room, "Frank")
    expect(plain.get_by_test_id("auth-required")).to_be_visible(timeout=WAIT_MS)
    expect(plain.get_by_test_id("auth-required")).to_contain_text("invitation link")
    signed = new_page()
    signed.goto(f"{server.url}/r/{quote(room)}?token={sign_token(room, 'speaker', 'Gil Signed')}")
    joined_id(signed)
    expect(entry(host, "Gil Signed")).to_have_attribute("data-verified", "true")
    expect(host.get_by_test_id("participant")).to_have_count(4)


def test_token_only_server(hub_factory, new_page, monkeypatch):
    monkeypatch.setenv("UNIONHUB_JWT_SECRET", JWT_SECRET)
    server = hub_factory("--asr-model", "none", "--auth", "token")
    room = unique_room("tokenonly")
    plain = open_room(new_page(), server.url, room, "Ana")
    expect(plain.get_by_test_id("auth-required")).to_be_visible(timeout=WAIT_MS)
    assert plain.evaluate("() => window.unionhub.state.myId") is None

    # Roles come from the links only: the first one in is a speaker if its link says so.
    speaker = new_page()
    speaker.goto(f"{server.url}/?room={quote(room)}&token={sign_token(room, 'speaker', 'Sam Speaker')}")
    joined_id(speaker)
    expect(speaker.get_by_test_id("host-controls")).to_be_hidden()
    expect(speaker.get_by_test_id("my-role")).to_be_hidden()
    expect(entry(speaker, "Sam Speaker")).to_have_attribute("data-role", "speaker")
    host = new_page()
    host.goto(f"{server.url}/?room={quote(room)}&token={sign_token(room, 'host', 'Hana Host')}")
    joined_id(host)
    expect(host.get_by_test_id("host-controls")).to_be_visible()
    expect(entry(host, "Sam Speaker").get_by_test_id("host-mute")).to_be_visible()
    expect(entry(speaker, "Hana Host").get_by_test_id("role-badge")).to_have_text("Host")
