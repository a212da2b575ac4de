"""The downlink congestion policy (media_server/congestion.py): when a subscriber's feedback
says its link is congested, how many videos it keeps, and how video comes back."""

from __future__ import annotations

from media_server import congestion
from media_server.congestion import Downlink, Kind, Reason

MBIT = 1_000_000


def feed_loss(link: Downlink, start: float, end: float, fraction: float, kind: Kind = Kind.VIDEO) -> None:
    t = start
    while t < end:
        link.on_report(kind, fraction, t)
        t += 0.5


def run(link: Downlink, start: float, end: float, videos: int, wanted: int, *, loss: float | None = None
        ) -> list[int | None]:
    """Tick every 0.5 s from ``start`` to ``end`` (feeding ``loss`` reports), as the SFU does;
    ``videos`` follows the cap. Returns the cap after each tick."""
    caps = []
    t = start
    while t < end:
        if loss is not None:
            link.on_report(Kind.VIDEO, loss, t)
        cap = link.update(t, videos, wanted)
        videos = wanted if cap is None else min(cap, wanted)
        caps.append(cap)
        t += 0.5
    return caps


def test_a_clean_link_has_no_cap() -> None:
    link = Downlink()
    assert run(link, 0, 30, videos=4, wanted=4, loss=0.0) == [None] * 60
    assert link.steps_down == 0


def test_random_loss_of_a_few_percent_is_not_congestion() -> None:
    link = Downlink()
    assert set(run(link, 0, 30, videos=4, wanted=4, loss=0.03)) == {None}


def test_heavy_loss_removes_one_video_per_hold_down_to_none_and_keeps_none() -> None:
    link = Downlink()
    caps = run(link, 0, 12, videos=3, wanted=3, loss=0.3)
    assert caps[:4] == [None, None, None, 2]  # the first step once the loss has lasted over a second
    steps = [c for i, c in enumerate(caps) if i > 0 and c != caps[i - 1]]
    assert steps == [2, 1, 0]
    assert link.last_reason is Reason.LOSS
    assert caps[-1] == 0


def test_one_bad_report_is_a_hiccup_not_congestion() -> None:
    """A browser starved of CPU for a moment loses what its socket could not hold: one report."""
    link = Downlink()
    link.on_report(Kind.VIDEO, 0.0, 0.0)
    link.on_report(Kind.VIDEO, 0.4, 1.0)
    assert link.congestion(1.0) is None  # loss in the newer second only
    link.on_report(Kind.VIDEO, 0.3, 2.05)  # and in the next one too: the link is full
    assert link.congestion(2.05) is Reason.LOSS
    link.on_report(Kind.VIDEO, 0.0, 3.0)
    link.on_report(Kind.VIDEO, 0.0, 3.2)
    assert link.congestion(3.2) is None


def test_one_audio_report_of_heavy_loss_is_congestion() -> None:
    """Browsers report on audio every ~5 s: one report covers seconds; video may look clean
    (retransmissions repair it), audio cannot be repaired."""
    link = Downlink()
    feed_loss(link, 0, 2, 0.01, Kind.VIDEO)
    link.on_report(Kind.AUDIO, 0.25, 2.0)
    assert link.congestion(2.0) is Reason.LOSS
    assert link.congestion(2.0 + congestion.AUDIO_WINDOW + 0.1) is None  # (expired)
    link.on_report(Kind.AUDIO, 0.04, 8.0)  # a few % of random loss: Opus FEC's job
    assert link.congestion(8.0) is None


def test_old_reports_expire() -> None:
    link = Downlink()
    feed_loss(link, 0, 1.5, 0.5)
    assert link.congestion(1.5) is Reason.LOSS
    assert link.congestion(1.5 + congestion.WINDOW / 2 + 0.1) is None


def test_the_estimate_is_kept_and_one_remb_reaching_several_senders_counts_once() -> None:
    link = Downlink()
    assert link.estimate is None
    for t in (1.0, 1.001, 1.002):  # one REMB, handed to each sender it names
        link.on_estimate(MBIT, t)
    link.on_estimate(MBIT // 2, 2.0)
    assert link.estimate == MBIT // 2


def test_a_falling_estimate_alone_does_not_pause_video() -> None:
    """aiortc's estimator on a busy loopback dips and recovers: no loss, no step."""
    link = Downlink()
    t = 0.0
    for bps in (854_000, 487_000, 400_000, 300_000, 487_000, 900_000):
        link.on_estimate(bps, t)
        assert link.update(t, videos=3, wanted=3) is None
        t += 0.5


def test_video_comes_back_after_the_backoff_and_the_cap_lifts() -> None:
    link = Downlink()
    caps = run(link, 0, 6, videos=2, wanted=2, loss=0.3)
    assert caps[-1] == 0
    # the link clears: the first probe once the lossy reports have left the window and
    # FIRST_BACKOFF has passed without congestion
    clear = 6 + congestion.WINDOW / 2
    caps = run(link, 6, clear + congestion.FIRST_BACKOFF - 1, videos=0, wanted=2, loss=0.0)
    assert set(caps) == {0}
    caps = run(link, clear + congestion.FIRST_BACKOFF - 1, clear + congestion.FIRST_BACKOFF + 0.5,
               videos=0, wanted=2, loss=0.0)
    assert caps[-1] == 1 and link.probes == 1
    # it held through the probe window and another backoff: the cap is lifted
    caps = run(link, clear + congestion.FIRST_BACKOFF + 0.5, 40, videos=1, wanted=2, loss=0.0)
    assert caps[-1] is None
    assert link.failed_probes == 0


def test_a_failed_probe_doubles_the_wait() -> None:
    link = Downlink()
    t_end = 6.0
    run(link, 0, t_end, videos=1, wanted=1, loss=0.3)
    assert link.cap == 0
    probe_at = t_end + congestion.WINDOW / 2 + congestion.FIRST_BACKOFF
    caps = run(link, t_end, probe_at + 0.5, videos=0, wanted=1, loss=0.0)
    assert caps[-1] is None  # probing the one video (cap reaches wanted: lifted)
    caps = run(link, probe_at + 0.5, probe_at + 3, videos=1, wanted=1, loss=0.4)
    assert caps[-1] == 0
    assert link.failed_probes == 1
    assert link.backoff == 2 * congestion.FIRST_BACKOFF
    # no probe after one backoff now, only after two (counted from the last lossy report)
    clear = probe_at + 2.5 + congestion.WINDOW / 2
    caps = run(link, probe_at + 3, clear + congestion.FIRST_BACKOFF + 1, videos=0, wanted=1, loss=0.0)
    assert set(caps) == {0}
    caps = run(link, clear + congestion.FIRST_BACKOFF + 1, clear + 2 * congestion.FIRST_BACKOFF + 0.5,
               videos=0, wanted=1, loss=0.0)
    assert caps[-1] is None


def test_the_wait_never_exceeds_the_maximum() -> None:
    link = Downlink()
    t = 0.0
    for _ in range(12):  # a link that never recovers: every probe fails
        run(link, t, t + 3, videos=1, wanted=1, loss=0.5)
        t += 3
        while link.cap == 0:
            run(link, t, t + 0.5, videos=0, wanted=1, loss=0.0)
            t += 0.5
    assert link.backoff == congestion.MAX_BACKOFF
    assert link.failed_probes >= 6
