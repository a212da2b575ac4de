"""The typed words captions carry to pages: why captions are (not) on, why a caption is not in the
reader's language, and which engine translated it."""

from __future__ import annotations

from enum import StrEnum


class CaptionState(StrEnum):
    """Why captions are (not) there, as a code pages translate (``CaptionStatus.state``)."""

    STARTING = "starting"  # models are loading
    ON = "on"
    OFF = "off"  # turned off on this server (--asr-model none)
    UNAVAILABLE = "unavailable"  # no model installed, or it failed to load (``message`` says which)


class Untranslated(StrEnum):
    """Why a listener got the original instead of their caption language (``untranslated.reason``)."""

    NO_MODEL = "no-model"  # no installed translation reaches the listener's language: say so
    BUSY = "busy"  # translation was busy (partials) or failed: the final usually is translated


class TranslatedBy(StrEnum):
    """Which engine translated a caption that was not Argos' text translation (``translated_by``)."""

    WHISPER = "whisper"  # Whisper's speech translation into English: no Argos model from the language
