"""Searching the documents of every pair one belongs to (``GET /api/twinnings/documents/search``),
on the real hub with real PDFs: a member finds their pairs' documents by a word of their text and
never another pair's; signed out is refused; a removed member finds nothing of that pair any more."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from test_twinning_documents import upload
from twinningkit import AGREEMENT, PAIR, MakeHub, admin, call, pdf, security, sign_in

SEARCH = "/api/twinnings/documents/search"
LEAFLET = pdf("Night shift leaflet", "Solidarity with the night porters", "Minimum staffing on every ward")
OTHER_PAIR = {**PAIR, "name": "Gent–Harare transport workers"}


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


async def search(http: aiohttp.ClientSession, hub: Any, headers: dict[str, str], q: str) -> tuple[int, Any]:
    return await call(http, hub, "GET", f"{SEARCH}?q={quote(q)}", headers)


async def test_members_find_only_their_own_pairs_documents(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    olu = await sign_in(hub, "olu@unison.test", "Olu")
    maria = await sign_in(hub, "maria@sindsaude.test", "Maria")
    lieve = await sign_in(hub, "lieve@acv.test", "Lieve")
    _, leeds = await call(http, hub, "POST", "/api/twinnings", olu, PAIR)
    _, gent = await call(http, hub, "POST", "/api/twinnings", lieve, OTHER_PAIR)
    await call(http, hub, "POST", f"/api/twinnings/{leeds['id']}/members", olu, {"email": "maria@sindsaude.test"})
    _, agreement = await upload(http, hub, leeds["id"], maria, AGREEMENT, "Convenção coletiva.pdf")
    _, leaflet = await upload(http, hub, gent["id"], lieve, LEAFLET, "Leaflet.pdf")

    # "minimum" is in both PDFs: each finds only their own pair's
    status, found = await search(http, hub, maria, "minimum")
    assert status == 200, found
    assert [(d["id"], d["pair"]["id"]) for d in found["documents"]] == [(agreement["id"], leeds["id"])]
    hit = found["documents"][0]
    assert (hit["name"], hit["pages"], hit["pair"]["name"], hit["pair"]["url"]) == (
        "Convenção coletiva.pdf", 1, PAIR["name"], f"/t/{leeds['id']}")
    assert hit["url"] == f"/api/twinnings/{leeds['id']}/documents/{agreement['id']}/file"
    marked = [hit["snippet"][start:end] for start, end in hit["highlights"]]
    assert marked == ["Minimum"], hit

    _, found = await search(http, hub, lieve, "minimum")
    assert [d["id"] for d in found["documents"]] == [leaflet["id"]]
    _, found = await search(http, hub, lieve, "salario minimo")  # the agreement's words: not Lieve's pair
    assert found["documents"] == []

    # the link in the hit downloads the PDF for the member, and for nobody else
    async with http.get(hub.url + hit["url"], headers=maria) as response:
        assert response.status == 200 and await response.read() == AGREEMENT
    async with http.get(hub.url + hit["url"], headers=lieve) as response:
        assert response.status == 403

    # the API key (a portal) organises every pair
    _, found = await search(http, hub, admin(), "minimum")
    assert {d["id"] for d in found["documents"]} == {agreement["id"], leaflet["id"]}


async def test_strangers_and_the_signed_out_find_nothing(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    olu = await sign_in(hub, "olu@unison.test", "Olu")
    _, pair = await call(http, hub, "POST", "/api/twinnings", olu, PAIR)
    await upload(http, hub, pair["id"], olu, AGREEMENT)

    stranger = await sign_in(hub, "someone@else.test", "Someone")
    status, found = await search(http, hub, stranger, "wage")
    assert (status, found) == (200, {"query": "wage", "documents": []})

    status, refused = await search(http, hub, {}, "wage")
    assert status == 401 and refused["error"]["code"] == "sign-in-required"
    assert "documents" not in refused

    for q, code in [("", "bad-query"), ("   ", "bad-query"), ("w" * 201, "bad-query")]:
        status, refused = await search(http, hub, olu, q)
        assert (status, refused["error"]["code"]) == (400, code), q
    status, found = await search(http, hub, olu, '"; DROP TABLE twinnings; --')
    assert (status, found["documents"]) == (200, [])
    status, found = await search(http, hub, olu, "w" * 200)
    assert (status, found["documents"]) == (200, [])


async def test_a_removed_member_no_longer_finds_the_pairs_documents(
    make_hub: MakeHub, http: aiohttp.ClientSession
) -> None:
    hub = await make_hub(security=security())
    olu = await sign_in(hub, "olu@unison.test", "Olu")
    maria = await sign_in(hub, "maria@sindsaude.test", "Maria")
    _, pair = await call(http, hub, "POST", "/api/twinnings", olu, PAIR)
    await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/members", olu, {"email": "maria@sindsaude.test"})
    _, doc = await upload(http, hub, pair["id"], olu, AGREEMENT)
    _, found = await search(http, hub, maria, "horas extras")
    assert [d["id"] for d in found["documents"]] == [doc["id"]]

    status, _ = await call(http, hub, "DELETE", f"/api/twinnings/{pair['id']}/members/maria@sindsaude.test", olu)
    assert status == 200
    status, found = await search(http, hub, maria, "horas extras")
    assert (status, found["documents"]) == (200, [])
    _, found = await search(http, hub, olu, "horas extras")
    assert [d["id"] for d in found["documents"]] == [doc["id"]]
