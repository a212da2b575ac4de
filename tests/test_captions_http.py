"""The LibreTranslate-compatible HTTP API (POST /translate, GET /languages) on the real hub.

The hub runs with captions configured but no speech model (``asr_model="none"``): ASR is
skipped, translation still starts in its worker process, using a tiny real en→es Argos package
built by tests/argos_model.py (once per module). Each test starts its own hub through
pytest-aiohttp's ``aiohttp_client``, whose event loop is the test's own: a second or two each,
while the translation worker starts and loads the package.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

import captioning.service
from argos_model import argos_env, build_argosmodel, crash_worker, install_argos_models
from captioning.http import CAPTIONS_KEY, MAX_TEXT, add_routes
from captioning.models import ModelDirs
from captioning.service import CaptionConfig, CaptionService
from unionhub.app import create_app

EN_ES = {
    "hello": "hola",
    "world": "mundo",
    "good": "buenos",
    "morning": "días",
    "friends": "amigos",
    "union": "sindicato",
    "workers": "trabajadores",
}
READY_TIMEOUT = 60.0


@dataclass
class TranslatingHub:
    client: TestClient[web.Request, web.Application]
    service: CaptionService


def _captions(models_dir: Path) -> CaptionConfig:
    return CaptionConfig(models_dir=models_dir, asr_model="none")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<models> with the en→es package, where `unionhub models install --translate en:es` puts it
    (ARGOS_PACKAGES_DIR=<models>/argos); built once for the module."""
    root = tmp_path_factory.mktemp("captions-http")
    models = root / "models"
    archive = build_argosmodel(root / "build", "en", "es", EN_ES)
    install_argos_models(ModelDirs(models).argos, [archive])
    return models


@pytest.fixture
async def translating_hub(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: AiohttpClient
) -> TranslatingHub:
    # Spawned workers keep argostranslate out of ~; configure()'s env changes are undone.
    for key, value in argos_env(ModelDirs(models_dir).argos, models_dir.parent / "home").items():
        monkeypatch.setenv(key, value)
    client = await aiohttp_client(create_app(tmp_path / "data", captions=_captions(models_dir)))
    service = client.app[CAPTIONS_KEY]
    await asyncio.wait_for(service.ready(), READY_TIMEOUT)
    assert service.translation_available, "translation did not start"
    return TranslatingHub(client, service)


async def _post(hub: TranslatingHub, **kwargs: Any) -> tuple[int, Any]:
    async with hub.client.post("/translate", **kwargs) as response:
        return response.status, await response.json()


async def _get(hub: TranslatingHub, path: str) -> tuple[int, Any]:
    async with hub.client.get(path) as response:
        return response.status, await response.json()


# -- translating ----------------------------------------------------------------------------


async def test_translate_json(translating_hub: TranslatingHub) -> None:
    status, body = await _post(
        translating_hub, json={"q": "hello world", "source": "en", "target": "es"}
    )
    assert (status, body) == (200, {"translatedText": "hola mundo"})


async def test_translate_ignores_libretranslate_extras(translating_hub: TranslatingHub) -> None:
    request = {"q": "good morning friends", "source": "en", "target": "es", "format": "text", "api_key": ""}
    status, body = await _post(translating_hub, json=request)
    assert (status, body) == (200, {"translatedText": "buenos días amigos"})


async def test_translate_list(translating_hub: TranslatingHub) -> None:
    status, body = await _post(
        translating_hub,
        json={"q": ["hello world", "union workers", "hello comrades"], "source": "en", "target": "es"},
    )
    assert status == 200
    assert body == {"translatedText": ["hola mundo", "sindicato trabajadores", "hola comrades"]}


async def test_translate_form_encoded(translating_hub: TranslatingHub) -> None:
    status, body = await _post(
        translating_hub, data={"q": "hello friends", "source": "en", "target": "es"}
    )
    assert (status, body) == (200, {"translatedText": "hola amigos"})


async def test_translate_to_the_same_language(translating_hub: TranslatingHub) -> None:
    status, body = await _post(translating_hub, json={"q": "hello", "source": "en", "target": "en"})
    assert (status, body) == (200, {"translatedText": "hello"})


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target"),
    [("en", "fr"), ("es", "en"), ("xx", "es")],
    ids=["no-model", "reverse-pair", "unknown-source"],
)
async def test_unavailable_pair_is_400(translating_hub: TranslatingHub, source: str, target: str) -> None:
    status, body = await _post(translating_hub, json={"q": "hello", "source": source, "target": target})
    assert status == 400
    assert set(body) == {"error"}
    assert source in body["error"] and target in body["error"]


async def test_auto_detection_is_400(translating_hub: TranslatingHub) -> None:
    status, body = await _post(translating_hub, json={"q": "hello", "source": "auto", "target": "es"})
    assert status == 400
    assert "detection" in body["error"]


@pytest.mark.parametrize(
    "request_body",
    [
        {"q": "hello", "target": "es"},
        {"q": "hello", "source": "en"},
        {"source": "en", "target": "es"},
        {"q": None, "source": "en", "target": "es"},
        {"q": 42, "source": "en", "target": "es"},
        {"q": [], "source": "en", "target": "es"},
        {"q": ["hello", 1], "source": "en", "target": "es"},
        {"q": "hello", "source": ["en"], "target": "es"},
        {},
        ["hello", "en", "es"],
        "hello",
    ],
    ids=[
        "no-source", "no-target", "no-q", "null-q", "number-q", "empty-list", "mixed-list",
        "list-source", "empty-object", "array-body", "string-body",
    ],
)
async def test_invalid_request_is_400(translating_hub: TranslatingHub, request_body: Any) -> None:
    status, body = await _post(translating_hub, json=request_body)
    assert status == 400
    assert isinstance(body.get("error"), str) and body["error"]


async def test_missing_form_fields_is_400(translating_hub: TranslatingHub) -> None:
    status, body = await _post(translating_hub, data={"q": "hello", "source": "en"})
    assert status == 400
    assert "error" in body


@pytest.mark.parametrize("payload", ["{not json", '{"q": "hello", "source": "en",', ""])
async def test_invalid_json_is_400(translating_hub: TranslatingHub, payload: str) -> None:
    status, body = await _post(
        translating_hub, data=payload, headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert "JSON" in body["error"]


async def test_too_long_text_is_413(translating_hub: TranslatingHub) -> None:
    status, body = await _post(
        translating_hub, json={"q": "a" * (MAX_TEXT + 1), "source": "en", "target": "es"}
    )
    assert status == 413
    assert "error" in body
    # The limit is on the whole request, not on each text of a list.
    half = "a" * (MAX_TEXT // 2 + 1)
    status, body = await _post(
        translating_hub, json={"q": [half, half], "source": "en", "target": "es"}
    )
    assert status == 413
    # Exactly at the limit is fine.
    status, body = await _post(
        translating_hub, json={"q": "a" * MAX_TEXT, "source": "en", "target": "es"}
    )
    assert status == 200


async def test_worker_crash_is_503_then_recovers(
    translating_hub: TranslatingHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = translating_hub.service._translation
    assert pool is not None
    restarts = pool.restarts
    request = {"q": "hello world", "source": "en", "target": "es"}
    with monkeypatch.context() as mp:
        mp.setattr(captioning.service, "_translate_many", crash_worker)  # dies mid-call
        status, body = await _post(translating_hub, json=request)
    assert status == 503
    assert "error" in body
    assert pool.restarts == restarts + 1
    status, body = await _post(translating_hub, json=request)  # the worker was restarted
    assert (status, body) == (200, {"translatedText": "hola mundo"})


# -- discovery --------------------------------------------------------------------------------


async def test_languages(translating_hub: TranslatingHub) -> None:
    status, body = await _get(translating_hub, "/languages")
    assert status == 200
    assert body == [
        {"code": "en", "name": "English", "targets": ["es"]},
        {"code": "es", "name": "Spanish", "targets": []},
    ]


async def test_healthz_reports_translation(translating_hub: TranslatingHub) -> None:
    await _post(translating_hub, json={"q": "hello", "source": "en", "target": "es"})
    status, body = await _get(translating_hub, "/healthz")
    assert status == 200
    captions = body["captions"]
    assert captions["translation"] is True
    assert captions["available"] is False  # asr_model="none": no speech captions
    assert captions["languages"] == ["en", "es"]
    assert captions["translations"] >= 1


# -- the model location ------------------------------------------------------------------------


async def test_service_finds_translation_models_where_argos_installs_them(tmp_path: Path) -> None:
    """Regression: the service once looked in <models>/argos/packages/, which Argos never uses."""
    models = tmp_path / "models"
    archive = build_argosmodel(tmp_path / "build", "en", "es", EN_ES)
    install_argos_models(ModelDirs(models).argos, [archive])
    assert (models / "argos" / "translate-en_es" / "metadata.json").is_file()
    assert not (models / "argos" / "packages").exists()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in argos_env(models / "argos", tmp_path / "home").items():
            mp.setenv(key, value)
        app = create_app(tmp_path / "data", captions=_captions(models))
        runner = web.AppRunner(app, shutdown_timeout=5.0)
        await runner.setup()
        try:
            service = app[CAPTIONS_KEY]
            await asyncio.wait_for(service.ready(), READY_TIMEOUT)
            assert service.translation_available
            assert service.pairs == [("en", "es")]
        finally:
            await runner.cleanup()


async def test_no_translation_without_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: AiohttpClient
) -> None:
    for key, value in argos_env(tmp_path / "models" / "argos", tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    client = await aiohttp_client(create_app(tmp_path / "data", captions=_captions(tmp_path / "models")))
    service = client.app[CAPTIONS_KEY]
    await asyncio.wait_for(service.ready(), READY_TIMEOUT)
    assert not service.translation_available
    hub = TranslatingHub(client, service)
    assert await _get(hub, "/languages") == (200, [])
    status, body = await _post(hub, json={"q": "hello", "source": "en", "target": "es"})
    assert status == 400
    assert "error" in body


async def test_a_token_hub_translates_only_with_the_api_key(
    translating_hub: TranslatingHub, aiohttp_client: AiohttpClient
) -> None:
    """`--auth token`: translation CPU is for the meetings and for integrations holding the key."""
    app = web.Application()
    add_routes(app, translating_hub.service, api_key="integration-key-0123456789")
    http = await aiohttp_client(app)
    url = "/translate"
    body = {"q": "the union", "source": "en", "target": "es"}
    for extra, headers in (({}, {}), ({"api_key": "wrong"}, {}), ({}, {"Authorization": "Bearer wrong"})):
        async with http.post(url, json={**body, **extra}, headers=headers) as r:
            assert r.status == 403 and (await r.json()) == {"error": "Invalid API key"}
    async with http.post(url, json={**body, "api_key": "integration-key-0123456789"}) as r:
        assert r.status == 200 and (await r.json())["translatedText"]
    async with http.post(url, json=body, headers={"Authorization": "Bearer integration-key-0123456789"}) as r:
        assert r.status == 200
