"""Socket.IO signalling: rooms, presence, chat and SDP exchange."""

from .rooms import Participant, Room, RoomRegistry
from .server import SignallingServer
from .validation import SignallingError

__all__ = ["Participant", "Room", "RoomRegistry", "SignallingError", "SignallingServer"]
