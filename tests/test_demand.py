"""media_server/demand.py: a camera nobody receives is released after a grace, wanted again at once."""

from __future__ import annotations

from media_server.demand import RELEASE_AFTER, CameraDemand


def demand() -> tuple[CameraDemand, list[tuple[str, bool]]]:
    told: list[tuple[str, bool]] = []
    return CameraDemand(lambda p, wanted: told.append((p, wanted))), told


def test_a_camera_nobody_receives_is_released_only_after_the_grace() -> None:
    d, told = demand()
    d.update({"ana": True, "bo": False}, now=10.0)
    d.tick(10.0 + RELEASE_AFTER - 0.1)
    assert told == []  # a tile that comes and goes does not stall an encoder
    d.tick(10.0 + RELEASE_AFTER)
    assert told == [("bo", False)]
    assert d.released == {"bo"} and d.releases == 1
    d.tick(100.0)
    d.update({"ana": True, "bo": False}, now=100.0)
    d.tick(200.0)
    assert told == [("bo", False)]  # asked once, not every tick


def test_wanted_again_is_asked_for_at_once_and_only_after_a_release() -> None:
    d, told = demand()
    d.update({"bo": False}, now=0.0)
    d.update({"bo": True}, now=1.0)  # back before the grace ended: nothing to say
    d.tick(5.0)
    assert told == []
    d.update({"bo": False}, now=5.0)
    d.tick(5.0 + RELEASE_AFTER)
    d.update({"bo": True}, now=7.5)
    assert told == [("bo", False), ("bo", True)]
    assert d.released == set() and d.recalls == 1


def test_the_grace_restarts_when_a_camera_was_wanted_in_between() -> None:
    d, told = demand()
    d.update({"bo": False}, now=0.0)
    d.update({"bo": True}, now=1.5)
    d.update({"bo": False}, now=1.6)
    d.tick(RELEASE_AFTER + 0.5)  # 2.5 s after the first, 0.9 s after the second
    assert told == []
    d.tick(1.6 + RELEASE_AFTER)
    assert told == [("bo", False)]


def test_a_publisher_who_left_is_forgotten() -> None:
    d, told = demand()
    d.update({"bo": False, "cy": False}, now=0.0)
    d.forget("cy")
    d.tick(RELEASE_AFTER)
    assert told == [("bo", False)]
    d.forget("bo")
    d.update({"bo": True}, now=3.0)  # published again: starts wanted, nothing to recall
    assert told == [("bo", False)] and d.released == set()


def test_a_failing_callback_does_not_break_the_policy() -> None:
    def fail(p: str, wanted: bool) -> None:
        raise RuntimeError("socket gone")

    d = CameraDemand(fail)
    d.update({"bo": False}, now=0.0)
    d.tick(RELEASE_AFTER)
    assert d.released == {"bo"}
    d.update({"bo": True}, now=3.0)
    assert d.released == set()
