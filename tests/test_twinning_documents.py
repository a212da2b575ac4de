"""A pair's documents on the real hub: real PDFs only (checked by content), a size limit, safe
names, text search (accents ignored), and nothing of them for anyone outside the pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hubtest import RunningHub
from meetings.documents import MAX_BYTES
from twinningkit import AGREEMENT, PAIR, MakeHub, admin, call, security, sign_in


async def upload(http: aiohttp.ClientSession, hub: RunningHub, pair_id: str, headers: dict[str, str], data: bytes,
                 name: str = "agreement.pdf", content_type: str = "application/pdf") -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type=content_type)
    async with http.post(f"{hub.url}/api/twinnings/{pair_id}/documents", data=form, headers=headers) as response:
        return response.status, await response.json()


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


async def people(hub: RunningHub, http: aiohttp.ClientSession) -> tuple[str, dict[str, dict[str, str]]]:
    who = {
        "organiser": await sign_in(hub, "olu@unison.test", "Olu"),
        "member": await sign_in(hub, "maria@sindsaude.test", "Maria"),
        "guest": await sign_in(hub, "someone@else.test", "Someone"),
        "signed-out": {},
        "api-key": admin(),
    }
    _, pair = await call(http, hub, "POST", "/api/twinnings", who["organiser"], PAIR)
    await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/members", who["organiser"], {"email": "maria@sindsaude.test"})
    return pair["id"], who


async def test_a_member_shares_an_agreement_that_members_find_and_download(
    make_hub: MakeHub, http: aiohttp.ClientSession
) -> None:
    hub = await make_hub(security=security())
    pair_id, who = await people(hub, http)
    status, doc = await upload(http, hub, pair_id, who["member"], AGREEMENT, "Convenção coletiva 2026.pdf")
    assert status == 201, doc
    assert (doc["name"], doc["pages"], doc["size"], doc["uploaded_by"]) == (
        "Convenção coletiva 2026.pdf", 1, len(AGREEMENT), "maria@sindsaude.test")
    _, page = await call(http, hub, "GET", f"/api/twinnings/{pair_id}", who["organiser"])
    assert [d["id"] for d in page["documents"]] == [doc["id"]]
    assert page["activity"][0]["text"] == "“Convenção coletiva 2026.pdf” added"

    for query, found in [("minimum wage", True), ("salario minimo", True), ("horas", True), ("pension", False),
                         ("agree", True), ("coletiva", True), ('"; DROP TABLE', False)]:
        status, result = await call(http, hub, "GET", f"/api/twinnings/{pair_id}/documents?q={query}", who["member"])
        assert status == 200
        assert [d["id"] for d in result["documents"]] == ([doc["id"]] if found else []), query
    _, result = await call(http, hub, "GET", f"/api/twinnings/{pair_id}/documents?q=wage", who["member"])
    assert "Minimum wage" in result["documents"][0]["snippet"]

    async with http.get(hub.url + doc["url"], headers=who["member"]) as response:
        assert response.status == 200 and await response.read() == AGREEMENT
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.headers["Content-Disposition"] == (
            "attachment; filename*=UTF-8''Conven%C3%A7%C3%A3o%20coletiva%202026.pdf")


async def test_documents_are_invisible_outside_the_pair(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    pair_id, who = await people(hub, http)
    status, doc = await upload(http, hub, pair_id, who["member"], AGREEMENT)
    expected = {"organiser": 200, "member": 200, "api-key": 200, "guest": 403, "signed-out": 401}
    for person, headers in who.items():
        async with http.get(hub.url + doc["url"], headers=headers) as response:
            assert response.status == expected[person], person
            body = await response.read()
            assert (AGREEMENT in body) == (expected[person] == 200)
        status, listing = await call(http, hub, "GET", f"/api/twinnings/{pair_id}/documents?q=wage", headers)
        assert status == expected[person]
        if status != 200:
            assert "documents" not in listing


async def test_who_may_upload(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    pair_id, who = await people(hub, http)
    expected = {"organiser": 201, "member": 201, "api-key": 201, "guest": 403, "signed-out": 401}
    for person, headers in who.items():
        status, answer = await upload(http, hub, pair_id, headers, AGREEMENT)
        assert status == expected[person], (person, answer)
    forged = {"Cookie": who["member"]["Cookie"]}
    status, answer = await upload(http, hub, pair_id, forged, AGREEMENT)
    assert (status, answer["error"]["code"]) == (403, "csrf-failed")


@pytest.mark.parametrize(("data", "code"), [
    (b"<html><script>alert(1)</script></html>", "not-a-pdf"),
    (b"MZ\x90\x00" + bytes(2000), "not-a-pdf"),
    (b"%PDF-1.7\n" + bytes(range(256)) * 8, "not-a-pdf"),
    (AGREEMENT[: len(AGREEMENT) // 3], "not-a-pdf"),  # cut short
    (b"", "not-a-pdf"),
])
async def test_a_file_is_a_pdf_by_content_not_by_name(
    make_hub: MakeHub, http: aiohttp.ClientSession, data: bytes, code: str
) -> None:
    hub = await make_hub(security=security())
    _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
    status, answer = await upload(http, hub, pair["id"], admin(), data, "agreement.pdf", "application/pdf")
    assert (status, answer["error"]["code"]) == (400, code)
    _, listing = await call(http, hub, "GET", f"/api/twinnings/{pair['id']}/documents", admin())
    assert listing["documents"] == []


async def test_an_oversized_file_is_refused(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
    big = AGREEMENT + b"%" + b"x" * (MAX_BYTES - len(AGREEMENT))  # a comment after %%EOF: just over the limit
    status, answer = await upload(http, hub, pair["id"], admin(), big)
    assert (status, answer["error"]["code"]) == (413, "too-large")
    fits = AGREEMENT + b"%" + b"x" * (MAX_BYTES - len(AGREEMENT) - 1)
    status, answer = await upload(http, hub, pair["id"], admin(), fits)
    assert status == 201 and answer["size"] == MAX_BYTES


def pdfs(root: Path) -> set[Path]:
    return {p for p in root.rglob("*.pdf") if p.is_file()}


async def test_a_path_in_the_name_goes_nowhere(make_hub: MakeHub, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    hub = await make_hub(security=security())
    _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
    before = pdfs(tmp_path)
    # the body a browser sends (the HTML standard writes CR LF in a file name as %0D%0A)
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="../../../../etc/cron.d/evil%0D%0A.pdf"'
            b"\r\nContent-Type: application/pdf\r\n\r\n" + AGREEMENT + b"\r\n--XyZ--\r\n")
    async with http.post(f"{hub.url}/api/twinnings/{pair['id']}/documents", data=body,
                         headers={**admin(), "Content-Type": "multipart/form-data; boundary=XyZ"}) as response:
        status, doc = response.status, await response.json()
    assert status == 201, doc
    assert doc["name"] == "evil.pdf"
    added = pdfs(tmp_path) - before
    assert [p.relative_to(tmp_path).parts[-3:] for p in added] == [("documents", pair["id"], f"{doc['id']}.pdf")]
    status, doc = await upload(http, hub, pair["id"], admin(), AGREEMENT, "agreement.exe")
    assert doc["name"] == "agreement.exe.pdf"  # it is a PDF: its name ends so
