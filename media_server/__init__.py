"""aiortc SFU: forwards encoded media between participants without transcoding video."""

from .audio_tap import AudioTap
from .forwarding import EncodedFrame, ForwardedTrack, ReceiverTap, is_keyframe
from .publication import Publication
from .sfu import SFU, MediaRoom

__all__ = [
    "SFU",
    "AudioTap",
    "EncodedFrame",
    "ForwardedTrack",
    "MediaRoom",
    "Publication",
    "ReceiverTap",
    "is_keyframe",
]
