"""The twinning API's refusals: a :class:`core.errors.HubError` with the HTTP status it answers."""

from __future__ import annotations

from core.errors import HubError


class TwinningError(HubError):
    """A refused twinning or session request; ``status`` is its HTTP status (400 unless said)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code, message)
        self.status = status
