"""The selective forwarding unit: rooms of peers and who receives whose publications."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer, RTCRtpReceiver

from . import lastn
from .demand import CameraDemand
from .forwarding import ForwardedTrack
from .network import MediaNetwork
from .peer import Peer
from .publication import Mode, Publication, Source
from .speaker import ActiveSpeakerDetector

logger = logging.getLogger(__name__)

SOURCES_KIND: dict[Source, str] = {"mic": "audio", "camera": "video", "screen": "video"}
SUPPORTED_CODECS = ("vp8", "h264")

SendOffer = Callable[[str, dict[str, Any]], Awaitable[None]]
PublicationHook = Callable[["MediaRoom", Publication], None]
#: ``(room, subscriber, participants whose video it now receives, whether its link holds
#: back others it would receive: see ``congestion.py``)``
OnForwarding = Callable[[str, str, list[str], bool], None]
#: ``(publisher, wanted)``: ask a publisher to stop sending its camera, which reaches nobody
#: (False), or to send it again (True); see ``demand.py``
OnCameraWanted = Callable[[str, bool], None]
#: Seconds between two looks at every subscriber's downlink.
DOWNLINK_TICK = 0.5


class Audience(Protocol):
    """Whose audio a participant's browser may receive, decided above the SFU (interpretation:
    an interpreter's voice goes only to their channel's listeners, never to the floor)."""

    def hears(self, subscriber: str, publication: Publication) -> bool:
        """Whether ``subscriber`` is subscribed to the audio ``publication``."""
        ...

    def on_floor(self, publication: Publication) -> bool:
        """Whether the audio ``publication`` counts for the active speaker."""
        ...


@dataclass(frozen=True)
class VideoPrefs:
    """One subscriber's last-N preferences (see ``lastn.py``)."""

    n: int | None = None  # its own N, at most the room's (None: the room's)
    pinned: tuple[str, ...] = ()  # participants it pinned, in order
    visible: frozenset[str] | None = None  # participants whose tile it shows (None: unknown, all)


@dataclass
class MediaRoom:
    """Media state of one room."""

    name: str
    codec: str
    peers: dict[str, Peer] = field(default_factory=dict)
    publications: dict[str, Publication] = field(default_factory=dict)
    speaker: ActiveSpeakerDetector | None = None
    #: last-N: how many participants' video each subscriber receives at most
    last_n: int = lastn.DEFAULT_LAST_N
    #: last-N: whose video each subscriber receives, as last reported
    forwarding: dict[str, frozenset[str]] = field(default_factory=dict)
    #: how many videos each subscriber would receive if its link carried them all
    wanted: dict[str, int] = field(default_factory=dict)
    #: subscribers whose congested link holds back video last-N chose for them
    congested: set[str] = field(default_factory=set)
    #: publishers whose audio is not the floor's (interpreters): no active-speaker detection
    off_floor: set[str] = field(default_factory=set)

    def publications_of(self, participant: str) -> list[Publication]:
        return [p for p in self.publications.values() if p.owner == participant]


class SFU:
    """Forwards each publisher's encoded frames to every other participant of its room.

    The signalling layer drives it (join, answer, publish, leave) and is called back to
    deliver offers (``send_offer``) and active-speaker changes (``on_active_speaker``), and to
    ask publishers to stop or resume sending a camera nobody receives (``on_camera_wanted``).
    Other components (captions, recordings) :meth:`watch` it to get every publication, those
    already published and each new one, with its :class:`~media_server.audio_tap.AudioTap`.
    """

    def __init__(
        self,
        send_offer: SendOffer,
        on_active_speaker: Callable[[str, str | None], None] | None = None,
        on_publications_changed: Callable[[str, str], None] | None = None,
        on_forwarding: OnForwarding | None = None,
        on_camera_wanted: OnCameraWanted | None = None,
        codec: str = "vp8",
        mode: Mode = "forward",
        ice_servers: list[RTCIceServer] | None = None,
        network: MediaNetwork | None = None,
    ) -> None:
        if codec not in SUPPORTED_CODECS:
            raise ValueError(f"unsupported codec {codec!r}; choose one of {SUPPORTED_CODECS}")
        self.codec = codec
        self.mode = mode
        self._send_offer = send_offer
        self._on_active_speaker = on_active_speaker
        self._on_publications_changed = on_publications_changed
        self._on_forwarding = on_forwarding
        self._on_camera_wanted = on_camera_wanted
        #: cameras nobody receives, whose publishers were asked to stop sending them
        self.camera_demand = CameraDemand(self._tell_camera_wanted)
        self._prefs: dict[str, VideoPrefs] = {}
        self._camera_off: set[str] = set()  # participants whose camera is switched off (last-N skips them)
        self._video_pauses = 0
        self._video_resumes = 0
        self._ice_servers = ice_servers or []
        #: media ports and public address (``--udp-port(s)``, ``--public-ip``)
        self.network = network or MediaNetwork()
        self.rooms: dict[str, MediaRoom] = {}
        self._room_of: dict[str, str] = {}
        self._no_video: set[str] = set()  # participants receiving no video (audio only)
        self._hooks: list[PublicationHook] = []
        self._downlinks: asyncio.Task[None] | None = None
        self._sent: dict[str, tuple[float, int]] = {}  # participant: (when, bytes sent by then)
        self._audience: Audience | None = None

    # -- watchers -----------------------------------------------------------------------

    def watch(self, hook: PublicationHook) -> Callable[[], None]:
        """Call ``hook(room, publication)`` for every publication; returns an unwatch function.

        The hook is first called, right away, for each publication already in any room (so a
        feature started mid-meeting sees what is being published), then for each new one as
        it starts. It must not block: start a task for any real work. A hook that raises is
        logged and does not affect the SFU or other hooks. Calling the returned function
        stops further calls (publications already seen are the watcher's to let go of).
        """
        self._hooks.append(hook)
        for room in list(self.rooms.values()):
            for publication in list(room.publications.values()):
                self._notify(hook, room, publication)
        watching = True

        def unwatch() -> None:
            nonlocal watching
            if watching:
                watching = False
                with contextlib.suppress(ValueError):  # (dropped through the deprecated list)
                    self._hooks.remove(hook)

        return unwatch

    @property
    def publication_hooks(self) -> list[PublicationHook]:
        """Deprecated: use :meth:`watch`. Hooks appended here miss publications made before."""
        warnings.warn(
            "SFU.publication_hooks is deprecated; use SFU.watch(hook)", DeprecationWarning, stacklevel=2
        )
        return self._hooks

    def _notify(self, hook: PublicationHook, room: MediaRoom, publication: Publication) -> None:
        try:
            hook(room, publication)
        except Exception:  # a feature's bug must not break publishing for everyone
            logger.exception("publication hook %r failed for %s", hook, publication.id)

    # -- lookups ------------------------------------------------------------------------

    def room(self, name: str) -> MediaRoom | None:
        """The media state of room ``name``, if anyone in it has joined the media side."""
        return self.rooms.get(name)

    def active_speaker(self, room: str) -> str | None:
        """Participant id of the room's current active speaker (None: nobody, or no detector)."""
        media_room = self.rooms.get(room)
        if media_room is None or media_room.speaker is None:
            return None
        return media_room.speaker.current

    # -- membership ---------------------------------------------------------------------

    def join(
        self,
        room_name: str,
        participant: str,
        publish: list[Source],
        receive_video: bool = True,
        last_n: int | None = None,
    ) -> Peer:
        """Create the participant's peer, with publish slots and subscriptions to the room.

        ``receive_video=False`` (audio only): no subscription to any video publication until
        :meth:`set_receive_video` turns video on. ``last_n``: the room's N (see
        :meth:`set_last_n`). Whose video the newcomer receives is :meth:`video_from` (not
        reported through ``on_forwarding``: the caller tells it when it answers the join).
        """
        lease = self.network.reserve()  # first: a full port range refuses the join, changing nothing
        room = self._open_room(room_name)
        if last_n is not None:
            room.last_n = last_n

        async def send_offer(offer: dict[str, Any]) -> None:
            await self._send_offer(participant, offer)

        peer = Peer(
            participant,
            room.codec,
            send_offer,
            self._handle_track,
            RTCConfiguration(iceServers=list(self._ice_servers)),
            self.network,
            lease,
        )
        room.peers[participant] = peer
        self._room_of[participant] = room_name
        if self._downlinks is None:
            self._downlinks = asyncio.create_task(self._watch_downlinks(), name="sfu-downlinks")
        if not receive_video:
            self._no_video.add(participant)
        for source in publish:
            peer.add_publish_slot(source, SOURCES_KIND[source])
        for publication in room.publications.values():
            self._subscribe(peer, publication)
        self._refresh(room, quiet=participant)
        # a listener in an empty room is offered a connection once there is media to receive
        return peer

    def _open_room(self, room_name: str) -> MediaRoom:
        room = self.rooms.get(room_name)
        if room is None:
            room = MediaRoom(room_name, self.codec)
            if self._on_active_speaker is not None or self._on_forwarding is not None:
                room.speaker = ActiveSpeakerDetector(self._speaker_notifier(room_name))
            self.rooms[room_name] = room
        return room

    def _speaker_notifier(self, room_name: str) -> Callable[[str | None], None]:
        notify = self._on_active_speaker

        def on_change(participant: str | None) -> None:
            room = self.rooms.get(room_name)
            if room is not None:
                self._refresh(room)  # the new speaker is the most recent one
            if notify is not None:
                notify(room_name, participant)

        return on_change

    async def leave(self, participant: str) -> None:
        room_name = self._room_of.pop(participant, None)
        self._no_video.discard(participant)
        self._prefs.pop(participant, None)
        self._camera_off.discard(participant)
        self._sent.pop(participant, None)
        self.camera_demand.forget(participant)
        if room_name is None:
            return
        room = self.rooms[room_name]
        # detach synchronously first, so concurrent leaves never see a half-removed room
        peer = room.peers.pop(participant)
        room.forwarding.pop(participant, None)
        room.wanted.pop(participant, None)
        room.congested.discard(participant)
        publications = room.publications_of(participant)
        # a room kept by tracks piped from another hub process stays until they end
        empty = not room.peers and not any(p.is_piped for p in room.publications.values())
        if empty:
            del self.rooms[room_name]
        for publication in publications:
            await self._unpublish(room, publication)
        if room.speaker is not None:
            room.speaker.remove(participant)
            if empty:
                await room.speaker.close()
        await peer.close()

    def peer(self, participant: str) -> Peer | None:
        room_name = self._room_of.get(participant)
        if room_name is None:
            return None
        return self.rooms[room_name].peers.get(participant)

    # -- publishing ---------------------------------------------------------------------------

    def publish(self, participant: str, source: Source) -> bool:
        """Open a publish slot (e.g. a screen share); False if it is already open."""
        peer = self.peer(participant)
        if peer is None:
            return False
        room = self.rooms[self._room_of[participant]]
        if any(p.source == source for p in room.publications_of(participant)):
            return False
        if peer.has_publish_slot(source):
            return False
        peer.add_publish_slot(source, SOURCES_KIND[source])
        return True

    async def unpublish(self, participant: str, source: Source) -> bool:
        peer = self.peer(participant)
        if peer is None:
            return False
        room = self.rooms[self._room_of[participant]]
        closed = peer.close_publish_slot(source)
        for publication in room.publications_of(participant):
            if publication.source == source:
                await self._unpublish(room, publication)
                closed = True
        return closed

    def _handle_track(
        self, peer: Peer, source: Source, receiver: RTCRtpReceiver, track: MediaStreamTrack
    ) -> None:
        room_name = self._room_of.get(peer.participant)
        if room_name is None:
            return
        publication = Publication(peer.participant, source, receiver, track, self.mode)
        self._publish(self.rooms[room_name], publication)

    def _publish(self, room: MediaRoom, publication: Publication) -> None:
        room.publications[publication.id] = publication
        logger.info("room %s: %s publishes %s", room.name, publication.owner, publication.source)
        for other in room.peers.values():
            if other.participant != publication.owner:
                self._subscribe(other, publication)
        if publication.kind == "audio" and room.speaker is not None:
            if self._on_floor(publication):
                room.speaker.add(publication.owner, publication)  # its levels; decoded only if it sends none
            else:
                room.off_floor.add(publication.owner)
        for hook in tuple(self._hooks):
            self._notify(hook, room, publication)
        if publication.kind == "video":
            self._refresh(room)
        if self._on_publications_changed is not None:
            self._on_publications_changed(room.name, publication.owner)

    # -- piped publications (a room spanning hub processes: pipe.py) --------------------------

    def add_publication(self, room_name: str, publication: Publication) -> None:
        """Publish a track no peer of this SFU sends (:meth:`Publication.piped`: its publisher
        is on another hub process); the room's browsers subscribe to it like to any other,
        watchers hear of it, and the room lasts while it has such tracks, even with no peer."""
        self._publish(self._open_room(room_name), publication)

    async def remove_publication(self, room_name: str, publication: Publication) -> None:
        """End a track :meth:`add_publication` published (closing it); a room left with no
        peer and no track ends."""
        room = self.rooms.get(room_name)
        if room is None or room.publications.get(publication.id) is not publication:
            await publication.close()
            return
        await self._unpublish(room, publication)
        if not room.peers and not room.publications and self.rooms.get(room_name) is room:
            del self.rooms[room_name]
            if room.speaker is not None:
                await room.speaker.close()

    def _subscribe(self, peer: Peer, publication: Publication) -> None:
        if publication.kind == "video" and peer.participant in self._no_video:
            return  # audio only: not a byte of video
        # (a piped publisher is not known above this process: its voice is the floor's here)
        if publication.kind == "audio" and self._audience is not None and not publication.is_piped and not (
            self._audience.hears(peer.participant, publication)
        ):
            return
        track = publication.subscribe(suppress_silence=True)  # a browser: audio only while they speak
        peer.add_subscribe_slot(publication.id, publication.owner, publication.source, track)

    async def _unpublish(self, room: MediaRoom, publication: Publication) -> None:
        room.publications.pop(publication.id, None)
        for peer in room.peers.values():
            track = peer.remove_subscribe_slot(publication.id)
            if track is not None:
                publication.unsubscribe(track)
        if publication.kind == "audio" and room.speaker is not None:
            room.speaker.remove(publication.owner)
            room.off_floor.discard(publication.owner)
        await publication.close()
        if publication.source == "camera":
            self.camera_demand.forget(publication.owner)
        if publication.kind == "video":
            self._refresh(room)
        if self._on_publications_changed is not None:
            self._on_publications_changed(room.name, publication.owner)

    # -- audience (interpretation) ------------------------------------------------------------

    def set_audience(self, audience: Audience | None) -> None:
        """Who receives which audio from now on (None: everyone everything); :meth:`apply_audience`
        brings a room's existing subscriptions in line."""
        self._audience = audience

    def _on_floor(self, publication: Publication) -> bool:
        return self._audience is None or publication.is_piped or self._audience.on_floor(publication)

    def apply_audience(self, room_name: str) -> int:
        """Subscribe and unsubscribe the room's browsers to audio as the audience now says (a
        renegotiation for each subscriber that changed), and follow for the active speaker only
        floor voices. Returns how many subscriptions changed."""
        room = self.rooms.get(room_name)
        if room is None:
            return 0
        changed = 0
        for publication in [p for p in room.publications.values() if p.kind == "audio"]:
            for subscriber, peer in room.peers.items():
                if subscriber == publication.owner:
                    continue
                wanted = self._audience is None or publication.is_piped or self._audience.hears(subscriber, publication)
                if wanted and not peer.subscribes_to(publication.id):
                    self._subscribe(peer, publication)
                    changed += 1
                elif not wanted:
                    track = peer.remove_subscribe_slot(publication.id)
                    if track is not None:
                        publication.unsubscribe(track)
                        changed += 1
            floor = self._on_floor(publication)
            if room.speaker is not None and floor == (publication.owner in room.off_floor):
                if floor:
                    room.off_floor.discard(publication.owner)
                    room.speaker.add(publication.owner, publication)
                else:
                    room.off_floor.add(publication.owner)
                    room.speaker.remove(publication.owner)
        return changed

    def receives_video(self, participant: str) -> bool:
        """Whether the participant is subscribed to video (False: audio only, or not joined)."""
        return participant in self._room_of and participant not in self._no_video

    def set_receive_video(self, participant: str, on: bool) -> bool:
        """Subscribe the participant to every video publication of its room (``on``), or remove
        all its video subscriptions (audio only); False if it is not joined or nothing changes.

        Each video subscription added back starts at a keyframe, which it requests, like any new
        subscriber's.
        """
        room_name = self._room_of.get(participant)
        if room_name is None or on == (participant not in self._no_video):
            return False
        room = self.rooms[room_name]
        peer = room.peers[participant]
        videos = [p for p in room.publications.values() if p.kind == "video" and p.owner != participant]
        if on:
            self._no_video.discard(participant)
            for publication in videos:
                self._subscribe(peer, publication)
        else:
            self._no_video.add(participant)
            for publication in videos:
                track = peer.remove_subscribe_slot(publication.id)
                if track is not None:
                    publication.unsubscribe(track)
        self._refresh(room)
        return True

    # -- last-N video ---------------------------------------------------------------------------

    def set_video_from(self, subscriber: str, publishers: set[str] | None) -> bool:
        """The mechanism of last-N: forward the video of ``publishers`` only (None: everyone's)
        to ``subscriber``, pausing its other video subscriptions (no renegotiation; a resumed
        one starts at a keyframe, requested at once). False if the subscriber is not joined.

        The policy (:meth:`set_last_n`, :meth:`set_video_prefs`, the active speaker) calls this
        whenever its inputs change, replacing a selection made directly.
        """
        peer = self.peer(subscriber)
        if peer is None:
            return False
        for track in peer.subscribed_tracks():
            if not isinstance(track, ForwardedTrack) or track.kind != "video":
                continue  # (relay mode, the benchmark baseline, always forwards everything)
            if publishers is None or track.publisher in publishers:
                if track.resume():
                    self._video_resumes += 1
            elif track.pause():
                self._video_pauses += 1
        return True

    def set_last_n(self, room_name: str, n: int) -> None:
        """The room's N: each subscriber receives at most this many participants' video."""
        room = self.rooms.get(room_name)
        if room is not None and room.last_n != n:
            room.last_n = n
            self._refresh(room)

    def video_prefs(self, participant: str) -> VideoPrefs:
        return self._prefs.get(participant, VideoPrefs())

    def set_video_prefs(self, participant: str, prefs: VideoPrefs) -> None:
        """A subscriber's own N (at most the room's), pins and visible tiles (``lastn.py``)."""
        room_name = self._room_of.get(participant)
        if room_name is None:
            return
        self._prefs[participant] = prefs
        self._refresh(self.rooms[room_name])

    def video_from(self, participant: str) -> list[str]:
        """The participants whose video ``participant`` receives now (sorted)."""
        room_name = self._room_of.get(participant)
        if room_name is None:
            return []
        return sorted(self.rooms[room_name].forwarding.get(participant, ()))

    def _refresh(self, room: MediaRoom, quiet: str | None = None) -> None:
        """Recompute every subscriber's selection in ``room`` and apply it; report changes
        through ``on_forwarding`` (except to ``quiet``, the participant joining). N ≤ 50: cheap.

        A subscriber whose downlink is congested gets the first ``cap`` of last-N's ranking."""
        videos = [p for p in room.publications.values() if p.kind == "video"]
        # a camera switched off (or muted by a host) is not worth a place; a screen share always is
        owners = {
            p.owner for p in videos
            if p.source == "screen" or not (p.muted or p.owner in self._camera_off)
        }
        candidates = [p for p in room.peers if p in owners]  # in the order people joined
        # then publishers on another hub process (piped), in the order they published
        candidates += [p for p in dict.fromkeys(v.owner for v in videos) if p in owners and p not in room.peers]
        screens = {p.owner for p in videos if p.source == "screen"}
        recency = room.speaker.recency() if room.speaker is not None else []
        for subscriber, peer in list(room.peers.items()):
            chosen: list[str] = []
            if subscriber not in self._no_video:
                prefs = self._prefs.get(subscriber, VideoPrefs())
                n = room.last_n if prefs.n is None else min(room.last_n, prefs.n)
                others = [p for p in candidates if p != subscriber]
                chosen = lastn.ranked(others, n, screens, prefs.pinned, prefs.visible, recency)
            room.wanted[subscriber] = len(chosen)
            cap = peer.downlink.cap
            congested = cap is not None and cap < len(chosen)
            if congested:
                chosen = chosen[:cap]
            if subscriber not in self._no_video:
                self.set_video_from(subscriber, set(chosen))
                pinned = self._prefs.get(subscriber, VideoPrefs()).pinned
                self._set_frame_rates(peer, lastn.temporal_layers(chosen, recency, pinned))
            selection = frozenset(chosen)
            if room.forwarding.get(subscriber) == selection and (subscriber in room.congested) == congested:
                continue
            room.forwarding[subscriber] = selection
            if congested:
                room.congested.add(subscriber)
            else:
                room.congested.discard(subscriber)
            if subscriber != quiet and self._on_forwarding is not None:
                self._on_forwarding(room.name, subscriber, sorted(selection), congested)
        self._update_camera_demand(room, time.monotonic())

    def _update_camera_demand(self, room: MediaRoom, now: float) -> None:
        """Tell ``demand.py`` which of the room's cameras anyone receives (forward mode: the
        relay baseline's subscriptions are not the SFU's to pause)."""
        if self.mode == "forward":
            wanted = {p.owner: p.wanted for p in room.publications.values() if p.source == "camera"}
            self.camera_demand.update(wanted, now)

    def _tell_camera_wanted(self, publisher: str, wanted: bool) -> None:
        if self._on_camera_wanted is not None and publisher in self._room_of:
            self._on_camera_wanted(publisher, wanted)

    @staticmethod
    def _set_frame_rates(peer: Peer, layers: dict[str, int]) -> None:
        """Cap the temporal layer of each camera forwarded to ``peer`` (``lastn.temporal_layers``:
        thumbnails at a lower frame rate); screen shares keep every frame."""
        for track in peer.subscribed_tracks():
            if isinstance(track, ForwardedTrack) and track.source == "camera" and track.publisher in layers:
                track.set_temporal_layer(layers[track.publisher])

    def congested(self, participant: str) -> bool:
        """Whether the participant's link holds back video last-N would send it."""
        room_name = self._room_of.get(participant)
        return room_name is not None and participant in self.rooms[room_name].congested

    # -- congestion ---------------------------------------------------------------------------

    async def _watch_downlinks(self) -> None:
        """Every :data:`DOWNLINK_TICK`, ask each subscriber's :class:`~congestion.Downlink`
        how many videos its link carries, and re-select where that changed; release the cameras
        nobody has received for a while (``demand.py``)."""
        while True:
            await asyncio.sleep(DOWNLINK_TICK)
            now = time.monotonic()
            try:
                self._check_downlinks(now)
            except Exception:  # the policy's bug must not stop forwarding
                logger.exception("downlink check failed")
            try:
                # a recorder or live stream subscribes without the SFU's knowing: look again
                for room in list(self.rooms.values()):
                    self._update_camera_demand(room, now)
                self.camera_demand.tick(now)
            except Exception:
                logger.exception("camera demand check failed")

    def _check_downlinks(self, now: float) -> None:
        for room in list(self.rooms.values()):
            changed = False
            for participant, peer in room.peers.items():
                then, sent_then = self._sent.get(participant, (now, peer.sent.bytes))
                self._sent[participant] = (now, peer.sent.bytes)
                bps = 8 * (peer.sent.bytes - sent_then) / (now - then) if now > then else 0.0
                if participant in self._no_video:
                    continue
                before = peer.downlink.cap
                receiving = len(room.forwarding.get(participant, ()))
                after = peer.downlink.update(now, receiving, room.wanted.get(participant, receiving))
                if after != before:
                    changed = True
                    logger.info(
                        "room %s: %s's link (%s, estimate %s bit/s, sending %.0f bit/s): video cap %s -> %s",
                        room.name, participant, peer.downlink.last_reason, peer.downlink.estimate, bps,
                        before, after,
                    )
            if changed:
                self._refresh(room)

    def set_muted(self, participant: str, source: Source, muted: bool) -> bool:
        """Stop (or resume) forwarding one of a participant's sources; False if not published."""
        room_name = self._room_of.get(participant)
        if room_name is None:
            return False
        found = False
        for publication in self.rooms[room_name].publications_of(participant):
            if publication.source == source:
                publication.muted = muted
                found = True
        if found and source != "mic":
            self._refresh(self.rooms[room_name])  # a muted camera takes no last-N place
        return found

    def set_camera_on(self, participant: str, on: bool) -> None:
        """Whether the participant's camera is on (its client's ``media-state``): a camera
        switched off sends nothing worth a last-N place, so others get someone else's video."""
        room_name = self._room_of.get(participant)
        if room_name is None or on == (participant not in self._camera_off):
            return
        if on:
            self._camera_off.discard(participant)
        else:
            self._camera_off.add(participant)
        self._refresh(self.rooms[room_name])

    def sources_of(self, participant: str) -> set[Source]:
        room_name = self._room_of.get(participant)
        if room_name is None:
            return set()
        return {p.source for p in self.rooms[room_name].publications_of(participant)}

    # -- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        if self._downlinks is not None:
            self._downlinks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._downlinks
            self._downlinks = None
        for participant in list(self._room_of):
            await self.leave(participant)
        self.network.close()

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring and benchmarks."""
        return {
            "rooms": len(self.rooms),
            "peers": sum(len(r.peers) for r in self.rooms.values()),
            "publications": sum(len(r.publications) for r in self.rooms.values()),
            "frames_in": sum(p.frames for r in self.rooms.values() for p in r.publications.values()),
            "plis": sum(p.plis for r in self.rooms.values() for p in r.publications.values()),
            "audio_frames_suppressed": sum(
                p.frames_suppressed for r in self.rooms.values() for p in r.publications.values()
            ),
            # last-N: video subscriptions paused now, and how often any was paused / resumed
            "video_paused": sum(
                1
                for r in self.rooms.values()
                for peer in r.peers.values()
                for t in peer.subscribed_tracks()
                if isinstance(t, ForwardedTrack) and t.paused
            ),
            "video_pauses": self._video_pauses,
            "video_resumes": self._video_resumes,
            # cameras reaching nobody: publishers asked to stop sending now, and how often
            "cameras_released": len(self.camera_demand.released),
            "camera_releases": self.camera_demand.releases,
            "camera_recalls": self.camera_demand.recalls,
            # temporal layers: frames above a subscriber's layer not sent (current subscriptions)
            "frames_thinned": sum(
                t.thinned_frames
                for r in self.rooms.values()
                for peer in r.peers.values()
                for t in peer.subscribed_tracks()
                if isinstance(t, ForwardedTrack)
            ),
            # congestion: subscribers whose link holds back video now, and how often links stepped
            "congested": sum(len(r.congested) for r in self.rooms.values()),
            "congestion_steps_down": sum(p.downlink.steps_down for r in self.rooms.values() for p in r.peers.values()),
            "congestion_probes": sum(p.downlink.probes for r in self.rooms.values() for p in r.peers.values()),
        }
