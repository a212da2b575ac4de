"""The signalling layer's refusal: answered as ``error {code, message, event}`` (PROTOCOL.md)."""

from __future__ import annotations

from core.errors import HubError


class SignallingError(HubError):
    """A rejected client event; all state is left as it was before the event."""
