"""The twinning API (``/api/twinnings``) and the pair page (``/t/<id>``), for portals and people.

Each route asks who is calling (:func:`meetings.access.caller`), hands the JSON body to
:class:`~meetings.service.Twinnings`, and answers JSON; refusals are ``{"error": {code,
message}}`` with 400 (bad input), 401 (signed out), 403 (not allowed), 404 or 409.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, ClientPayloadError, web

from core.http import json_error

from . import ics
from .access import Caller, caller
from .activity import entry
from .documents import MAX_BYTES, MAX_QUERY, DocumentStore
from .errors import TwinningError
from .service import Twinnings
from .vocabulary import Activity, PairRole

logger = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
MAX_UPLOAD = MAX_BYTES + 64 * 1024  # the file and the multipart envelope around it
CHUNK = 64 * 1024
ID_RE = re.compile(r"[0-9a-f]{12}")
HOST_RE = re.compile(r"[A-Za-z0-9.-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?")
NO_STORE = {"Cache-Control": "no-store"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _errors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            for key in ("id", "session", "document"):
                if key in request.match_info and not ID_RE.fullmatch(request.match_info[key]):
                    raise TwinningError("not-found", "There is no such twinning pair or session.", 404)
            return await handler(request)
        except TwinningError as exc:
            return json_error(exc.status, exc.code, exc.message)

    return wrapped


async def _body(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise TwinningError("too-large", f"The request body is larger than {MAX_BODY} bytes.", 413)
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise TwinningError("too-large", f"The request body is larger than {MAX_BODY} bytes.", 413)
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TwinningError("bad-request", "The body must be JSON.") from None


def base_url(request: web.Request) -> str:
    """This hub's address as the caller reached it (for links in e-mails and calendars)."""
    if not HOST_RE.fullmatch(request.host):
        raise TwinningError("bad-host", "The Host header is not a valid host name.")
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    scheme = forwarded if forwarded in ("http", "https") else request.scheme
    return f"{scheme}://{request.host}"


class TwinningRoutes:
    def __init__(self, twinnings: Twinnings, documents: DocumentStore, api_key: Callable[[], str | None], page: Path,
                 sender: str | None) -> None:
        self.twinnings = twinnings
        self.documents = documents
        self._sender = sender  # the ORGANIZER of downloaded .ics files (the hub's From: address)
        self._api_key = api_key
        self._page = page

    async def _caller(self, request: web.Request, write: bool = False) -> Caller:
        return await caller(request, self._api_key(), write)

    async def page(self, request: web.Request) -> web.StreamResponse:
        """The pair page: a shell whose script reads the API (who may see it is decided there)."""
        if not ID_RE.fullmatch(request.match_info["id"]):
            raise web.HTTPNotFound()
        return web.FileResponse(self._page, headers={"Cache-Control": "no-cache"})

    async def create(self, request: web.Request) -> web.StreamResponse:
        who = await self._caller(request, write=True)
        pair = await self.twinnings.create_pair(who, await _body(request))
        role = who.role_in(pair) or PairRole.ORGANISER
        view = {**await self.twinnings.pair_view(pair, role, who), "documents": []}
        return web.json_response(view, status=201, headers=NO_STORE)

    async def list(self, request: web.Request) -> web.StreamResponse:
        who = await self._caller(request)
        pairs = await self.twinnings.store.for_email(who.email if not who.admin else None)
        return web.json_response(
            {"twinnings": [{"id": p.id, "name": p.name, "url": f"/t/{p.id}", "your_role": str(who.role_in(p)),
                            "branches": [b.public() for b in p.branches]} for p in pairs]},
            headers=NO_STORE,
        )

    async def get(self, request: web.Request) -> web.StreamResponse:
        who = await self._caller(request)
        pair, role = await self.twinnings.pair(who, request.match_info["id"])
        view = await self.twinnings.pair_view(pair, role, who)
        view["documents"] = [d.public(pair.id) for d in await self.documents.of_pair(pair.id)]
        return web.json_response(view, headers=NO_STORE)

    async def add_member(self, request: web.Request) -> web.StreamResponse:
        who = await self._caller(request, write=True)
        member = await self.twinnings.add_member(who, request.match_info["id"], await _body(request))
        return web.json_response(member.public(), status=201, headers=NO_STORE)

    async def remove_member(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /api/twinnings/<id>/members/<e-mail>`` (organisers): the member removed."""
        who = await self._caller(request, write=True)
        member = await self.twinnings.remove_member(who, request.match_info["id"], request.match_info["email"])
        return web.json_response(member.public(), headers=NO_STORE)

    async def change(self, request: web.Request) -> web.StreamResponse:
        """``PATCH /api/twinnings/<id>`` ``{"record_sessions": bool}`` (organisers): the pair, as ``GET`` shows it."""
        who = await self._caller(request, write=True)
        pair = await self.twinnings.change_settings(who, request.match_info["id"], await _body(request))
        view = await self.twinnings.pair_view(pair, who.role_in(pair) or PairRole.ORGANISER, who)
        view["documents"] = [d.public(pair.id) for d in await self.documents.of_pair(pair.id)]
        return web.json_response(view, headers=NO_STORE)

    async def schedule(self, request: web.Request) -> web.StreamResponse:
        who = await self._caller(request, write=True)
        pair, session = await self.twinnings.schedule(who, request.match_info["id"], await _body(request),
                                                      base_url(request))
        return web.json_response(await self.twinnings.session_view(pair, session, who), status=201, headers=NO_STORE)

    async def session(self, request: web.Request) -> web.StreamResponse:
        who = await self._caller(request)
        pair, session = await self.twinnings.session(who, request.match_info["id"], request.match_info["session"])
        return web.json_response(await self.twinnings.session_view(pair, session, who), headers=NO_STORE)

    async def change_session(self, request: web.Request) -> web.StreamResponse:
        who = await self._caller(request, write=True)
        pair, session = await self.twinnings.change(who, request.match_info["id"], request.match_info["session"],
                                                    await _body(request))
        return web.json_response(await self.twinnings.session_view(pair, session, who), headers=NO_STORE)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        who = await self._caller(request, write=True)
        pair, session = await self.twinnings.cancel(who, request.match_info["id"], request.match_info["session"])
        return web.json_response(await self.twinnings.session_view(pair, session, who), headers=NO_STORE)

    async def calendar(self, request: web.Request) -> web.StreamResponse:
        """The session's .ics for the caller (a member's own join link in it)."""
        who = await self._caller(request)
        pair, session = await self.twinnings.session(who, request.match_info["id"], request.match_info["session"])
        host = request.host.split(":", 1)[0] if HOST_RE.fullmatch(request.host) else "localhost"
        organiser = self._sender or f"unionhub@{host}"
        data = ics.calendar(session, pair, await self.twinnings.link_for(who, pair, session), organiser, who.email)
        return web.Response(
            body=data, content_type="text/calendar", charset="utf-8",
            headers={**NO_STORE, "Content-Disposition": f'attachment; filename="session-{session.id}.ics"'},
        )


    # -- documents ------------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """``multipart/form-data`` with a ``file`` part: a PDF for the pair (members)."""
        who = await self._caller(request, write=True)
        pair, _ = await self.twinnings.pair(who, request.match_info["id"])
        name, data = await _file_part(request)
        doc = await self.documents.add(pair.id, name, data, who.email or "API")
        await self.twinnings.store.log(pair.id, entry(Activity.DOCUMENT_ADDED, name=doc.name, pages=doc.pages))
        return web.json_response(doc.public(pair.id), status=201, headers=NO_STORE)

    async def list_documents(self, request: web.Request) -> web.StreamResponse:
        """The pair's documents, newest first; with ``?q=`` those whose name or text has every word."""
        who = await self._caller(request)
        pair, _ = await self.twinnings.pair(who, request.match_info["id"])
        query = request.query.get("q", "")[:200]
        if query.strip():
            found = await self.documents.search(pair.id, query)
            docs = [{**d.public(pair.id), "snippet": snippet} for d, snippet in found]
        else:
            docs = [d.public(pair.id) for d in await self.documents.of_pair(pair.id)]
        return web.json_response({"documents": docs}, headers=NO_STORE)

    async def search_documents(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/twinnings/documents/search?q=``: documents of every pair the caller belongs to
        whose name or text has every word, best first, each with its pair, a snippet with the
        matches' offsets, and its (members-only) download URL."""
        who = await self._caller(request)
        query = request.query.get("q", "")
        if not query.strip():
            raise TwinningError("bad-query", "Give the words to search for as ?q=…")
        if len(query) > MAX_QUERY:
            raise TwinningError("bad-query", f"A search has at most {MAX_QUERY} characters.")
        pairs = {p.id: p for p in await self.twinnings.pairs_of(who)}
        found = await self.documents.search_pairs(pairs.keys(), query)
        hits = [{**f.public(f.document.pair_id), "pair": {"id": pair.id, "name": pair.name, "url": f"/t/{pair.id}"}}
                for f in found if (pair := pairs.get(f.document.pair_id)) is not None]
        return web.json_response({"query": query, "documents": hits}, headers=NO_STORE)

    async def download(self, request: web.Request) -> web.StreamResponse:
        who = await self._caller(request)
        pair, _ = await self.twinnings.pair(who, request.match_info["id"])
        doc = await self.documents.get(pair.id, request.match_info["document"])
        path = self.documents.path(doc) if doc is not None else None
        if doc is None or path is None or not path.is_file():
            raise TwinningError("not-found", "There is no such document in this pair.", 404)
        return web.FileResponse(path, headers={
            **NO_STORE, "Content-Type": "application/pdf",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.name, safe='')}",
        })


async def _file_part(request: web.Request) -> tuple[str | None, bytes]:
    """The ``file`` part of a multipart upload, refused past :data:`MAX_BYTES` as it streams in."""
    too_large = TwinningError("too-large", f"Documents are at most {MAX_BYTES // (1024 * 1024)} MB.", 413)
    if request.content_length is not None and request.content_length > MAX_UPLOAD:
        raise too_large
    if not request.content_type.startswith("multipart/"):
        raise TwinningError("bad-request", "Send the PDF as multipart/form-data in a part named 'file'.")
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name != "file":
                continue
            data = bytearray()
            while chunk := await part.read_chunk(CHUNK):
                data += chunk
                if len(data) > MAX_BYTES:
                    raise too_large
            # the HTML standard escapes '"', CR and LF in file names as %22, %0D, %0A; some clients
            # (aiohttp's) percent-encode all of a non-ASCII name
            return unquote(part.filename) if part.filename else None, bytes(data)
    except (ValueError, AssertionError, ClientPayloadError) as exc:
        raise TwinningError("bad-request", f"The upload is not valid multipart/form-data ({exc}).") from None
    raise TwinningError("bad-request", "Send the PDF as multipart/form-data in a part named 'file'.")


def add_routes(
    app: web.Application, twinnings: Twinnings, documents: DocumentStore, api_key: Callable[[], str | None], page: Path,
    sender: str | None = None,
) -> None:
    """The routes; ``api_key`` gives the hub's key when asked (None: the API key is off)."""
    routes = TwinningRoutes(twinnings, documents, api_key, page, sender)
    r = app.router
    r.add_get("/t/{id}", routes.page)
    r.add_post("/api/twinnings", _errors(routes.create))
    r.add_get("/api/twinnings", _errors(routes.list))
    r.add_get("/api/twinnings/documents/search", _errors(routes.search_documents))
    r.add_get("/api/twinnings/{id}", _errors(routes.get))
    r.add_patch("/api/twinnings/{id}", _errors(routes.change))
    r.add_post("/api/twinnings/{id}/members", _errors(routes.add_member))
    r.add_delete("/api/twinnings/{id}/members/{email}", _errors(routes.remove_member))
    r.add_post("/api/twinnings/{id}/sessions", _errors(routes.schedule))
    r.add_get("/api/twinnings/{id}/sessions/{session}", _errors(routes.session))
    r.add_patch("/api/twinnings/{id}/sessions/{session}", _errors(routes.change_session))
    r.add_delete("/api/twinnings/{id}/sessions/{session}", _errors(routes.cancel))
    r.add_get("/api/twinnings/{id}/sessions/{session}/invite.ics", _errors(routes.calendar))
    r.add_post("/api/twinnings/{id}/documents", _errors(routes.upload))
    r.add_get("/api/twinnings/{id}/documents", _errors(routes.list_documents))
    r.add_get("/api/twinnings/{id}/documents/{document}/file", _errors(routes.download))
