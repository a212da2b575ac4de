"""An activity log entry: a typed kind and its fields, worded by the reader's page.

The pair page (web_client/twinning.js) words each entry from its kind and fields in the
reader's language; the English ``text`` stored beside them is for API clients and for the
entries written before the fields were (migration 4), which have only their text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .vocabulary import Activity

#: The English wording of each kind; ``{name}`` etc. are the entry's fields.
ENGLISH: dict[Activity, str] = {
    Activity.CREATED: "Pair “{pair}” created",
    Activity.MEMBER_ADDED: "{name} joined as {role}",
    Activity.MEMBER_REMOVED: "{name} was removed from the pair",
    Activity.SESSION_SCHEDULED: "“{title}” scheduled",
    Activity.SESSION_CHANGED: "“{title}” changed",
    Activity.SESSION_CANCELLED: "“{title}” cancelled",
    Activity.SESSION_HELD: "“{title}” held",
    Activity.DOCUMENT_ADDED: "“{name}” added",
    Activity.RECORDING_ON: "Sessions will be recorded from now on",
    Activity.RECORDING_OFF: "Sessions will no longer be recorded",
}


@dataclass(frozen=True)
class Entry:
    """What happened (``kind``) and to what (``fields``: strings and numbers only)."""

    kind: Activity
    fields: dict[str, str | int]

    @property
    def text(self) -> str:
        return ENGLISH[self.kind].format(**self.fields)

    def public(self, at: float) -> dict[str, Any]:
        return {"at": at, "kind": self.kind.value, "fields": dict(self.fields), "text": self.text}


def entry(kind: Activity, **fields: str | int) -> Entry:
    return Entry(kind, fields)
