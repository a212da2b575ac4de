"""One error shape for the whole hub: a protocol ``code`` and a message a person can read.

Socket.IO answers it as ``error {code, message, event}``, HTTP as
``{"error": {"code", "message"}}`` (:func:`core.http.json_error`). Each layer subclasses it
next to its domain, as Galène keeps UserError and KickError beside the group.
"""

from __future__ import annotations


class HubError(Exception):
    """A refused request: ``code`` is stable (clients switch on it), ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
