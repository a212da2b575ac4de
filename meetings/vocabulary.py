"""The words of twinning pairs and sessions, defined once: roles in a pair, notices, activity.

Validation returns these enums, so nothing downstream compares bare strings.
"""

from __future__ import annotations

import enum


class PairRole(enum.StrEnum):
    """What someone is in a twinning pair: organisers manage it and host its sessions."""

    ORGANISER = "organiser"
    MEMBER = "member"


class Notice(enum.StrEnum):
    """An e-mail the scheduler sends, recorded once sent so that it is never sent twice."""

    WELCOME = "welcome"  # you were added to a pair
    INVITATION = "invitation"  # a session's .ics (METHOD:REQUEST), again with each new SEQUENCE
    CANCELLATION = "cancellation"  # the session's .ics with METHOD:CANCEL
    REMINDER_24H = "reminder-24h"
    REMINDER_15M = "reminder-15m"


class Activity(enum.StrEnum):
    """What the pair page's activity log records (its words: :mod:`meetings.activity`)."""

    CREATED = "created"
    MEMBER_ADDED = "member-added"
    MEMBER_REMOVED = "member-removed"
    RECORDING_ON = "recording-on"  # the pair's sessions are recorded from now on
    RECORDING_OFF = "recording-off"
    SESSION_SCHEDULED = "session-scheduled"
    SESSION_CHANGED = "session-changed"
    SESSION_CANCELLED = "session-cancelled"
    SESSION_HELD = "session-held"
    DOCUMENT_ADDED = "document-added"


class SessionStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
