"""Socket.IO signalling: rooms, presence, chat and SDP exchange; features meet rooms here."""

from .errors import SignallingError
from .features import Feature, RoomHub
from .rooms import Participant, Room
from .server import SignallingServer
from .store import MemoryRoomStore, RoomStore

__all__ = [
    "Feature", "MemoryRoomStore", "Participant", "Room", "RoomHub", "RoomStore", "SignallingError",
    "SignallingServer",
]
