"""The signalling layer's refusal: answered as ``error {code, message, event, reason?, params?}``.

``code`` is the stable category clients switch on (PROTOCOL.md "Error codes"); ``reason``, when
there is one, says which of that code's refusals it is, and ``params`` carries its values (a
number, a name), so a page says it in the member's language from its catalogues
(``errors.<code>`` or ``errors.<code>.<reason>``, web_client/i18n.js) instead of showing
``message``, which is English. Both vocabularies are typed: a new code or reason is added here,
and tests/test_i18n_server_codes.py fails until every catalogue has its message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

from core.errors import HubError

__all__ = ["CODES", "CODE_PARAMS", "REASONS", "REASON_NAMES", "Code", "Reason", "SignallingError", "payload", "refusal"]

#: Every code an ``error`` event may carry, features' and the media layer's included.
Code = Literal[
    "bad-request", "bad-room", "bad-name", "bad-lang", "too-large", "not-joined", "already-joined",
    "room-full", "server-full", "media-ports-exhausted", "bad-sdp", "no-offer", "bad-source", "listener",
    "audio-only", "not-available", "bad-rtmp-url", "not-live", "forbidden", "bad-token", "auth-required",
    "passcode-required", "bad-passcode", "room-locked", "rejected", "banned", "rate-limited",
    "no-such-participant", "no-channel", "no-microphone", "not-interpreter", "booth-busy", "booth-not-live",
    "unknown-event", "internal",
    # raised by features through this error (cluster, meetings)
    "moved", "unavailable", "no-such-session", "session-cancelled", "not-open",
]
CODES: tuple[Code, ...] = get_args(Code)

#: Which refusal of its code an error is, where the code alone would say less than the server knows.
Reason = Literal[
    # host settings
    "passcode-too-short", "passcode-missing", "last-n-range", "tokens-off",
    # host controls and roles
    "hosts-only", "remove-self", "last-host", "hosts-make-interpreters", "interpreter-needs-speaker",
    "viewer-cannot-share", "hosts-record", "hosts-live", "hosts-push", "recording-off", "live-off",
    # a knocker turned away, a link that no longer works
    "turned-away", "meeting-ended", "ended-before-admitted", "nobody-to-admit", "link-revoked",
    # signed join links
    "token-invalid", "token-expired", "token-not-yet-valid", "token-other-room", "tokens-not-accepted",
    # what a participant typed or did
    "chat-too-long", "name-too-long", "already-sharing",
]

#: Each reason's code and English message (``{name}`` placeholders filled from its params).
REASONS: Mapping[Reason, tuple[Code, str]] = {
    "passcode-too-short": ("bad-passcode", "Passcodes are at least {count} characters."),
    "passcode-missing": ("passcode-required", "Give the passcode people will need."),
    "last-n-range": ("bad-request", "'lastN' must be a whole number from {min} to {max}."),
    "tokens-off": ("not-available", "Signed join links are turned off on this server "
                                    "(it has no UNIONHUB_JWT_SECRET)."),
    "hosts-only": ("forbidden", "Only hosts can do that."),
    "remove-self": ("forbidden", "You cannot remove yourself — leave instead."),
    "last-host": ("forbidden", "A meeting needs a host: make someone else host first."),
    "hosts-make-interpreters": ("forbidden", "Only hosts can make someone an interpreter."),
    "interpreter-needs-speaker": ("forbidden", "Make them a speaker first: viewers do not speak."),
    "viewer-cannot-share": ("forbidden", "Viewers cannot share; ask a host to make you a speaker."),
    "hosts-record": ("forbidden", "Only hosts can record in this meeting."),
    "hosts-live": ("forbidden", "Only hosts can go live in this meeting."),
    "hosts-push": ("forbidden", "Only hosts can stream to other sites in this meeting."),
    "recording-off": ("not-available", "Recording is turned off on this server."),
    "live-off": ("not-available", "Live streaming is turned off on this server."),
    "turned-away": ("rejected", "A host did not let you into this meeting."),
    "meeting-ended": ("rejected", "The host ended the meeting."),
    "ended-before-admitted": ("rejected", "The meeting ended before a host let you in."),
    "nobody-to-admit": ("rejected", "Nobody is in this meeting to let you in yet — try again in a moment."),
    "link-revoked": ("rejected", "You were removed from this meeting; this link no longer works."),
    "token-invalid": ("bad-token", "This join link is not valid."),
    "token-expired": ("bad-token", "This join link has expired — ask the host for a new one."),
    "token-not-yet-valid": ("bad-token", "This join link is not valid yet."),
    "token-other-room": ("bad-token", "This join link is for another room."),
    "tokens-not-accepted": ("bad-token", "This server does not accept signed join links."),
    "chat-too-long": ("too-large", "Chat messages are at most {count} characters."),
    "name-too-long": ("bad-name", "Display names are at most {count} characters."),
    "already-sharing": ("bad-source", "You are already sharing your screen."),
}
REASON_NAMES: tuple[Reason, ...] = get_args(Reason)

#: The params a code's own message may use (its refusals without a reason).
CODE_PARAMS: Mapping[Code, tuple[str, ...]] = {"no-microphone": ("name",)}

Param = str | int


class SignallingError(HubError):
    """A rejected client event; all state is left as it was before the event."""

    def __init__(self, code: Code, message: str, *, reason: Reason | None = None,
                 params: Mapping[str, Param] | None = None) -> None:
        super().__init__(code, message)
        self.reason = reason
        self.params: dict[str, Param] = dict(params or {})


def refusal(reason: Reason, **params: Param) -> SignallingError:
    """The error for ``reason``: its code, its English message filled in, its params."""
    code, template = REASONS[reason]
    return SignallingError(code, template.format(**params), reason=reason, params=params)


def payload(exc: HubError, event: str | None) -> dict[str, object]:
    """The ``error`` event's payload for ``exc``: ``reason`` and ``params`` only when it has them."""
    body: dict[str, object] = {"code": exc.code, "message": exc.message, "event": event}
    if isinstance(exc, SignallingError):
        if exc.reason:
            body["reason"] = exc.reason
        if exc.params:
            body["params"] = exc.params
    return body
