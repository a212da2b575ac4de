"""Every refusal the server sends a page has a message in every catalogue.

`error {code, message, event, reason?, params?}` (docs/PROTOCOL.md): pages say `errors.<code>.<reason>`
or `errors.<code>` from web_client/locales in the member's language, filled with `params`; the
English `message` is only a last resort. The codes and reasons are the typed vocabularies of
signalling/errors.py, so a new one without a translation in all six languages fails here, and so
does a catalogue message using a value the server does not send.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import pytest

from hubtest import RunningHub
from sigclient import Connect
from signalling.errors import CODE_PARAMS, CODES, REASON_NAMES, REASONS, Code, Reason, SignallingError, payload, refusal
from signalling.validation import MAX_CHAT, MIN_PASSCODE
from test_i18n_catalogues import LOCALES, forms, load, placeholders

TEMPLATE_FIELD_RE = re.compile(r"\{([A-Za-z0-9_]+)\}")


def catalogue_placeholders(locale: str, key: str) -> set[str]:
    return set().union(*(placeholders(text) for text in forms(load(locale)[key]).values()))


def reason_key(reason: Reason) -> str:
    return f"errors.{REASONS[reason][0]}.{reason}"


def test_every_reason_has_one_code_and_an_english_message() -> None:
    assert sorted(REASONS) == sorted(REASON_NAMES)
    assert set(get_args(Code)) == set(CODES)
    for reason, (code, message) in REASONS.items():
        assert code in CODES, reason
        assert message.strip(), reason
    assert not set(CODES) & set(REASON_NAMES), "a reason is not a code (clients switch on codes)"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_error_code_has_a_message(locale: str) -> None:
    catalogue = load(locale)
    missing = [f"errors.{code}" for code in CODES if f"errors.{code}" not in catalogue]
    assert not missing, f"{locale}.json has no message for the server's codes {missing}"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_reason_has_a_message(locale: str) -> None:
    catalogue = load(locale)
    missing = [reason_key(reason) for reason in REASON_NAMES if reason_key(reason) not in catalogue]
    assert not missing, f"{locale}.json has no message for the server's reasons {missing}"


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogue_messages_use_only_values_the_server_sends(locale: str) -> None:
    for reason, (_, template) in REASONS.items():
        sent = set(TEMPLATE_FIELD_RE.findall(template))
        used = catalogue_placeholders(locale, reason_key(reason))
        assert used <= sent, f"{locale}.json {reason_key(reason)} uses {sorted(used - sent)}, the server sends {sorted(sent)}"
        if locale == "en":
            assert used == sent, f"en.json {reason_key(reason)} leaves out {sorted(sent - used)}"
    for code in CODES:
        used = catalogue_placeholders(locale, f"errors.{code}")
        assert used <= set(CODE_PARAMS.get(code, ())), f"{locale}.json errors.{code} uses {sorted(used)}"


def test_protocol_md_lists_every_code_and_reason() -> None:
    protocol = (Path(__file__).resolve().parents[1] / "docs/PROTOCOL.md").read_text(encoding="utf-8")
    missing = [name for name in (*CODES, *REASON_NAMES) if f"`{name}`" not in protocol]
    assert not missing, f"docs/PROTOCOL.md does not document {missing}"


def test_a_refusal_carries_its_reason_and_params_and_says_it_in_english() -> None:
    error = refusal("last-n-range", min=1, max=25)
    assert (error.code, error.reason, error.params) == ("bad-request", "last-n-range", {"min": 1, "max": 25})
    assert error.message == "'lastN' must be a whole number from 1 to 25."
    assert payload(error, "settings") == {"code": "bad-request", "message": error.message, "event": "settings",
                                          "reason": "last-n-range", "params": {"min": 1, "max": 25}}
    plain = SignallingError("not-joined", "Join a room first.")
    assert payload(plain, None) == {"code": "not-joined", "message": "Join a room first.", "event": None}
    for reason, (_, template) in REASONS.items():  # every template can be filled
        values: dict[str, str | int] = dict.fromkeys(TEMPLATE_FIELD_RE.findall(template), 7)
        assert "{" not in refusal(reason, **values).message, reason


async def test_host_settings_refusals_carry_reasons_and_values(hub: RunningHub, connect: Connect) -> None:
    host, guest = await connect(hub.url), await connect(hub.url)
    await host.join("reasons", "Ana")
    await guest.join("reasons", "Bo")

    def answer(errors: list[dict[str, Any]]) -> tuple[Any, ...]:
        assert len(errors) == 1, errors
        e = errors[0]
        return e["code"], e.get("reason"), e.get("params")

    assert answer(await host.send("settings", {"access": "passcode", "passcode": "abc"})) == (
        "bad-passcode", "passcode-too-short", {"count": MIN_PASSCODE})
    assert answer(await host.send("settings", {"access": "passcode"})) == ("passcode-required", "passcode-missing", None)
    assert answer(await host.send("settings", {"lastN": 99})) == ("bad-request", "last-n-range", {"min": 1, "max": 25})
    assert answer(await guest.send("settings", {"locked": True})) == ("forbidden", "hosts-only", None)
    bo_id = (await host.wait_for("participant-joined", lambda p: p["name"] == "Bo"))["id"]
    assert answer(await guest.send("remove", {"id": bo_id, "ban": False})) == ("forbidden", "hosts-only", None)
    assert answer(await guest.send("chat", {"text": "x" * (MAX_CHAT + 1)})) == (
        "too-large", "chat-too-long", {"count": MAX_CHAT})
    host_id = (await guest.wait_for("joined"))["participants"][0]["id"]
    assert answer(await host.send("role", {"id": host_id, "role": "speaker"})) == ("forbidden", "last-host", None)
    assert answer(await host.send("remove", {"id": host_id, "ban": False})) == ("forbidden", "remove-self", None)
