"""The pair page /t/<id> in Chromium: an organiser signs in by e-mail link, sees the next session
in both sides' local times, schedules another and invites a member; a stranger is sent to sign in.
A member's search in the recordings library also finds their pairs' documents (and nobody else's).

The hub is a real `unionhub serve` with an API key (a portal creates the pair) and aiosmtpd.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from i18nkit import run_axe
from signinkit import SmtpServer, smtp_server
from twinningkit import AGREEMENT, soon

pytestmark = pytest.mark.browser

API_KEY = "twinning-browser-api-key-0123456789"
ORGANISER = "olu@unison.test"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def twinning_hub(hub_factory: Callable[..., Any], smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in {**smtp.env(), "UNIONHUB_API_KEY": API_KEY}.items():
        monkeypatch.setenv(key, value)
    return hub_factory()


def api(hub: Any, method: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(
        hub.url + path, data=None if body is None else json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def sign_in(page: Any, hub: Any, smtp: SmtpServer, email: str, next_path: str) -> None:
    page.goto(f"{hub.url}/signin?next={next_path}")
    page.fill('[data-testid="email"]', email)
    before = len(smtp.mailbox.messages)
    page.locator('[data-testid="email-submit"]').click()
    page.locator('[data-testid="email-sent"]').wait_for()
    smtp.mailbox.wait(before + 1)
    # the hub may e-mail this address invitations too: take the message with the sign-in link
    index = max(i for i, m in enumerate(smtp.mailbox.messages)
                if m["To"] == email and "/signin/link?token=" in m.get_body(("plain",)).get_content())
    page.goto(smtp.mailbox.link(index))
    page.locator('[data-testid="link-confirm"]').click()
    page.wait_for_url(f"{hub.url}{next_path}")


def test_an_organiser_reads_and_runs_the_pair_page(twinning_hub: Any, smtp: SmtpServer,
                                                   new_page: Callable[[], Any], tmp_path: Path) -> None:
    hub = twinning_hub
    pair = api(hub, "POST", "/api/twinnings", {"name": "Leeds–São Paulo", "branches": [
        {"name": "Leeds", "country": "GB", "timezone": "Europe/London", "languages": ["en"]},
        {"name": "São Paulo", "country": "BR", "timezone": "America/Sao_Paulo", "languages": ["pt"]},
    ]})
    api(hub, "POST", f"/api/twinnings/{pair['id']}/members", {"email": ORGANISER, "name": "Olu", "role": "organiser"})
    api(hub, "POST", f"/api/twinnings/{pair['id']}/sessions", {
        "title": "Staffing levels", "start": "2027-07-05T14:00", "timezone": "Europe/London", "rrule": "FREQ=WEEKLY;COUNT=4"})

    stranger = new_page()
    stranger.goto(f"{hub.url}/t/{pair['id']}")
    stranger.locator('[data-testid="signin-link"]').wait_for()
    assert stranger.locator("#pair").is_hidden()

    page = new_page()
    sign_in(page, hub, smtp, ORGANISER, f"/t/{pair['id']}")
    page.locator('[data-testid="pair-name"]').filter(has_text="Leeds–São Paulo").wait_for()
    times = page.locator('[data-testid="next-session"] [data-testid="local-time"]')
    times.first.wait_for()
    texts = times.all_text_contents()
    assert "Leeds:" in texts[0] and "14:00" in texts[0] and "Jul" in texts[0]
    assert "São Paulo:" in texts[1] and "10:00" in texts[1]  # BST is UTC+1, Brazil UTC-3
    join = page.locator('[data-testid="next-session"] [data-testid="join-link"]')
    assert "/?room=tw-" in (join.get_attribute("href") or "")

    page.fill('[data-testid="session-title"]', "Pensions")
    page.fill('[data-testid="session-start"]', "2027-12-06T10:00")
    page.select_option('[data-testid="session-timezone"]', "America/Sao_Paulo")
    page.select_option('[data-testid="session-repeat"]', "FREQ=MONTHLY")
    page.locator('#schedule-form button[type="submit"]').click()
    page.locator('[data-testid="session"]', has_text="Pensions").wait_for()

    page.fill('[data-testid="session-title"]', "Impossible")
    page.fill('[data-testid="session-start"]', "2027-03-28T01:30")
    page.select_option('[data-testid="session-timezone"]', "Europe/London")
    page.locator('#schedule-form button[type="submit"]').click()
    error = page.locator('[data-testid="error"]')
    error.wait_for()
    assert "does not exist in Europe/London" in (error.text_content() or "")

    page.fill('[data-testid="invite-email"]', "maria@sindsaude.test")
    page.select_option('[data-testid="invite-branch"]', "1")
    page.locator('#invite-form button[type="submit"]').click()
    page.locator('[data-testid="member"]', has_text="maria@sindsaude.test (member, São Paulo)").wait_for()
    activity = page.locator('[data-testid="activity-item"]').all_text_contents()
    assert any("joined as member" in a for a in activity) and any("“Pensions” scheduled" in a for a in activity)

    agreement = tmp_path / "Convenção coletiva.pdf"
    agreement.write_bytes(AGREEMENT)
    page.set_input_files('[data-testid="document-file"]', str(agreement))
    page.locator('#upload-form button[type="submit"]').click()
    page.locator('[data-testid="document"]', has_text="Convenção coletiva.pdf").wait_for()
    page.fill('[data-testid="document-search"]', "salario minimo")
    snippet = page.locator('[data-testid="document-snippet"]')
    snippet.wait_for()
    assert "Salário mínimo" in (snippet.text_content() or "")
    page.fill('[data-testid="document-search"]', "pension")
    page.locator('[data-testid="documents"]', has_text="No documents found.").wait_for()

    not_pdf = tmp_path / "leaflet.pdf"
    not_pdf.write_bytes(b"<html>not a pdf</html>")
    page.set_input_files('[data-testid="document-file"]', str(not_pdf))
    page.locator('#upload-form button[type="submit"]').click()
    page.locator('[data-testid="error"]', has_text="not a PDF").wait_for()


def test_an_organiser_removes_a_member_and_chooses_recording_in_spanish(twinning_hub: Any, smtp: SmtpServer,
                                                                         new_page: Callable[[], Any]) -> None:
    """The pair page in Spanish: the activity log is worded in Spanish from its entries (not the
    server's English); the organiser turns recording on and removes a member from the page."""
    hub = twinning_hub
    pair = api(hub, "POST", "/api/twinnings", {"name": "Harare–Gent", "branches": [
        {"name": "Harare", "country": "ZW", "timezone": "Africa/Harare", "languages": ["en"]},
        {"name": "Gent", "country": "BE", "timezone": "Europe/Brussels", "languages": ["fr"]},
    ]})
    api(hub, "POST", f"/api/twinnings/{pair['id']}/members", {"email": ORGANISER, "name": "Olu", "role": "organiser"})
    api(hub, "POST", f"/api/twinnings/{pair['id']}/members", {"email": "lieve@acv.test", "name": "Lieve", "branch": 1})
    api(hub, "POST", f"/api/twinnings/{pair['id']}/sessions", {
        "title": "Convenios", "start": "2027-07-05T14:00", "timezone": "Africa/Harare"})

    page = new_page()
    page.add_init_script("localStorage.setItem('unionhub-locale', 'es')")
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, hub, smtp, ORGANISER, f"/t/{pair['id']}")
    page.locator('[data-testid="activity-item"]', has_text="Sesión «Convenios» programada").wait_for()
    activity = " | ".join(page.locator('[data-testid="activity-item"]').all_text_contents())
    assert "Lieve se sumó como miembro" in activity and "Hermanamiento «Harare–Gent» creado" in activity
    assert "scheduled" not in activity and "joined as" not in activity
    assert page.locator('[data-testid="recording-setting"]').text_content() == "Las sesiones no se graban."

    page.locator('[data-testid="record-sessions"]').check()
    page.locator('[data-testid="activity-item"]', has_text="A partir de ahora se graban las sesiones").wait_for()
    assert "Las sesiones se graban" in (page.locator('[data-testid="recording-setting"]').text_content() or "")
    assert api(hub, "GET", f"/api/twinnings/{pair['id']}", None)["record_sessions"] is True

    page.locator('[data-testid="member"]', has_text="Lieve").locator('[data-testid="remove-member"]').click()
    page.locator('[data-testid="activity-item"]', has_text="Lieve ya no forma parte del hermanamiento").wait_for()
    assert page.locator('[data-testid="member"]', has_text="Lieve").count() == 0
    page.locator('[data-testid="member"]', has_text="Olu").locator('[data-testid="remove-member"]').click()
    page.locator('[data-testid="error"]', has_text="Un hermanamiento conserva al menos una persona organizadora").wait_for()


def test_a_session_of_a_pair_that_records_shows_the_recording_sign(twinning_hub: Any, smtp: SmtpServer,
                                                                    new_page: Callable[[], Any]) -> None:
    """From the pair page's join link into the session's call: it is being recorded, as the pair
    decided, and the call shows the usual recording sign."""
    hub = twinning_hub
    pair = api(hub, "POST", "/api/twinnings", {"name": "Harare–Gent", "record_sessions": True, "branches": [
        {"name": "Harare", "timezone": "Africa/Harare", "languages": ["en"]},
        {"name": "Gent", "timezone": "Europe/Brussels", "languages": ["fr"]},
    ]})
    api(hub, "POST", f"/api/twinnings/{pair['id']}/members", {"email": ORGANISER, "name": "Olu", "role": "organiser"})
    api(hub, "POST", f"/api/twinnings/{pair['id']}/sessions", {
        "title": "Convenios", "start": soon(5), "timezone": "Africa/Johannesburg"})

    page = new_page()
    sign_in(page, hub, smtp, ORGANISER, f"/t/{pair['id']}")
    page.locator('[data-testid="recording-setting"]', has_text="Sessions are recorded").wait_for()
    page.locator('[data-testid="next-session"] [data-testid="join-link"]').click()
    page.wait_for_function("() => !!(window.unionhub && window.unionhub.state.myId)", timeout=20000)
    indicator = page.get_by_test_id("recording-indicator")
    expect(indicator).to_be_visible()
    expect(indicator).to_have_text("Recording")


def upload(hub: Any, pair_id: str, name: str, data: bytes) -> Any:
    """A portal shares a PDF with the pair (multipart/form-data, as a browser's form sends it)."""
    boundary = "unionhub-test-boundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/pdf\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{hub.url}/api/twinnings/{pair_id}/documents", data=body, method="POST",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_a_member_finds_their_pairs_documents_in_the_library_search(
    twinning_hub: Any, smtp: SmtpServer, new_page: Callable[[], Any]
) -> None:
    hub = twinning_hub
    branches = [
        {"name": "Leeds", "country": "GB", "timezone": "Europe/London", "languages": ["en"]},
        {"name": "São Paulo", "country": "BR", "timezone": "America/Sao_Paulo", "languages": ["pt"]},
    ]
    ours = api(hub, "POST", "/api/twinnings", {"name": "Leeds–São Paulo", "branches": branches})
    theirs = api(hub, "POST", "/api/twinnings", {"name": "Gent–Harare", "branches": branches})
    api(hub, "POST", f"/api/twinnings/{ours['id']}/members", {"email": ORGANISER, "name": "Olu", "role": "member"})
    doc = upload(hub, ours["id"], "Convenção coletiva.pdf", AGREEMENT)
    upload(hub, theirs["id"], "Other pair.pdf", AGREEMENT)  # the same words, in a pair Olu is not in

    # a visitor who is not signed in searches the library: recordings only, as before
    visitor = new_page()
    asked: list[str] = []
    visitor.on("request", lambda request: asked.append(request.url))
    visitor.goto(f"{hub.url}/recordings")
    visitor.fill('[data-testid="recording-search"]', "salario minimo")
    expect(visitor.locator('[data-testid="recording-count"]')).to_contain_text("salario minimo")
    expect(visitor.locator("#recording-list")).not_to_have_attribute("aria-busy", "true")
    expect(visitor.locator('[data-testid="pair-documents"]')).to_be_hidden()
    expect(visitor.locator('[data-testid="error"]')).to_be_hidden()
    assert not [url for url in asked if "/api/twinnings" in url]

    page = new_page()
    sign_in(page, hub, smtp, ORGANISER, "/recordings")
    page.fill('[data-testid="recording-search"]', "salario minimo")
    section = page.get_by_role("region", name="Documents from your twinning pairs")
    expect(section).to_be_visible()
    expect(section.get_by_role("heading", name="Documents from your twinning pairs")).to_be_visible()
    hits = section.get_by_role("listitem")
    expect(hits).to_have_count(1)
    expect(hits.get_by_role("link", name="Leeds–São Paulo")).to_have_attribute("href", f"/t/{ours['id']}")
    expect(hits.locator("mark").first).to_have_text("Salário")
    expect(hits).to_contain_text("1 page")
    link = hits.get_by_role("link", name="Convenção coletiva.pdf")
    expect(link).to_have_attribute("href", doc["url"])
    assert run_axe(page) == []
    with page.expect_download() as download:
        link.click()
    assert Path(download.value.path()).read_bytes() == AGREEMENT

    page.fill('[data-testid="recording-search"]', "pension")
    expect(page.locator('[data-testid="recording-count"]')).to_contain_text("pension")
    expect(section).to_be_hidden()
