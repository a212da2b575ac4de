"""aiortc SFU: forwards encoded media between participants without transcoding video."""

from .audio_tap import AudioTap
from .forwarding import EncodedFrame, ForwardedTrack, ReceiverTap, is_keyframe
from .publication import SOURCES, Publication, Source, is_source, parse_source
from .sfu import SFU, MediaRoom, PublicationHook

__all__ = [
    "SFU",
    "SOURCES",
    "AudioTap",
    "EncodedFrame",
    "ForwardedTrack",
    "MediaRoom",
    "Publication",
    "PublicationHook",
    "ReceiverTap",
    "Source",
    "is_keyframe",
    "is_source",
    "parse_source",
]
