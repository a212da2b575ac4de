"""Last-N video: whose video one subscriber receives, when it may receive at most ``n`` of them.

A pure policy (no media, no clock): the SFU calls :func:`select` for each subscriber whenever
an input changes (the active speaker, publications, the room's N, the subscriber's preferences)
and pauses the video subscriptions of everyone not selected (see ``ForwardedTrack.pause``);
:func:`temporal_layers` then says at what frame rate each chosen camera is forwarded.

The candidates are the participants publishing video worth a place (the SFU leaves out cameras
switched off or stopped by a host). The order, each step filling what the previous ones left of
``n``:

1. **screen shares** — always in, even beyond ``n`` (a shared screen is what the meeting looks at;
   only a congested link's cap, ``congestion.py``, which keeps a prefix of :func:`ranked`, can
   pause them, and last of all);
2. **pinned** participants, in the order the subscriber pinned them (pins beyond ``n`` are not);
3. the others by **speaking recency** (most recent first; people who never spoke after them,
   in ``candidates`` order — the SFU passes the order people joined), where participants whose
   tile the subscriber reports **visible** come before those it reports hidden
   (``visible=None``: the subscriber reported nothing, every tile counts as visible).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

#: A room's default N, and the bounds a host (or a participant, for itself) may set.
DEFAULT_LAST_N = 8
MIN_LAST_N = 1
MAX_LAST_N = 25


def select(
    candidates: Iterable[str],
    n: int,
    screens: Collection[str] = (),
    pinned: Sequence[str] = (),
    visible: Collection[str] | None = None,
    recency: Sequence[str] = (),
) -> set[str]:
    """The participants (of ``candidates``, those publishing video) whose video to forward.

    ``screens``: candidates sharing a screen; ``pinned``: the subscriber's pins, in order;
    ``visible``: participants whose tile the subscriber's browser shows (None: unknown, all);
    ``recency``: participants by when they last spoke, most recent first.
    """
    return set(ranked(candidates, n, screens, pinned, visible, recency))


def ranked(
    candidates: Iterable[str],
    n: int,
    screens: Collection[str] = (),
    pinned: Sequence[str] = (),
    visible: Collection[str] | None = None,
    recency: Sequence[str] = (),
) -> list[str]:
    """:func:`select`'s choice, most important first: when the subscriber's link cannot carry
    them all (``congestion.py``), the SFU keeps a prefix of this list."""
    order = list(dict.fromkeys(candidates))
    present = set(order)
    chosen = [p for p in order if p in screens]
    budget = max(0, n - len(chosen))  # what pins and speakers may fill (screens may exceed n)
    rank = {p: i for i, p in enumerate(dict.fromkeys(recency))}
    joined = {p: i for i, p in enumerate(order)}
    rest = sorted(
        (p for p in order if p not in chosen),
        key=lambda p: (visible is not None and p not in visible, rank.get(p, len(rank)), joined[p]),
    )
    for participant in [*dict.fromkeys(pinned), *rest]:
        if budget <= 0:
            break
        if participant in present and participant not in chosen:
            chosen.append(participant)
            budget -= 1
    return chosen


# -- frame rates (VP8 temporal layers) ---------------------------------------------------------

#: Temporal layers a camera sends (``L1T3``): TID 0 carries a quarter of the frames, TID ≤ 1
#: half, TID ≤ 2 all of them. A forwarded camera's layer caps the TIDs a subscriber gets;
#: FULL_RATE is every layer a VP8 descriptor can name (its TID has 2 bits).
FULL_RATE = 3
HALF_RATE = 1
QUARTER_RATE = 0
#: A subscriber receiving at most this many videos shows big tiles: they get half the rate.
FEW_VIDEOS = 4


def temporal_layers(
    chosen: Sequence[str],
    recency: Sequence[str] = (),
    pinned: Collection[str] = (),
) -> dict[str, int]:
    """The highest temporal layer to forward of each ``chosen`` participant's camera.

    Why: a meeting's hub CPU is spent per frame handed to a subscriber, and a thumbnail does
    not need 30 fps (Jitsi sends small tiles a lower rate too). Full rate for the
    subscriber's speaker (the most recent speaker among ``chosen``), pinned participants and
    a lone video; the other tiles get half the rate when there are at most
    :data:`FEW_VIDEOS` (big tiles), a quarter otherwise. Screen shares are not thinned (the
    SFU applies this to cameras only). ``recency``: most recent speaker first.
    """
    present = set(chosen)
    speaker = next((p for p in recency if p in present), None)
    thumbnail = HALF_RATE if len(present) <= FEW_VIDEOS else QUARTER_RATE
    return {
        p: FULL_RATE if p == speaker or p in pinned or len(present) == 1 else thumbnail
        for p in chosen
    }
