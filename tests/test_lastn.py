"""media_server/lastn.py: whose video a subscriber receives when it receives at most N."""

from __future__ import annotations

import pytest

from media_server.lastn import DEFAULT_LAST_N, FULL_RATE, HALF_RATE, QUARTER_RATE, select, temporal_layers

PEOPLE = ["ana", "bo", "cy", "di", "ed", "fa"]  # in the order they joined


def test_the_most_recent_speakers_fill_n() -> None:
    assert select(PEOPLE, 2, recency=["di", "bo", "ana"]) == {"di", "bo"}


def test_nobody_spoke_yet_the_first_to_join_are_chosen() -> None:
    assert select(PEOPLE, 3) == {"ana", "bo", "cy"}


def test_people_who_never_spoke_come_after_speakers_in_join_order() -> None:
    assert select(PEOPLE, 3, recency=["fa"]) == {"fa", "ana", "bo"}


def test_n_larger_than_the_candidates_takes_everyone() -> None:
    assert select(PEOPLE, 25) == set(PEOPLE)
    assert select([], 8) == set()


def test_a_screen_share_is_always_in_and_counts_toward_n() -> None:
    assert select(PEOPLE, 2, screens={"fa"}, recency=["di", "bo"]) == {"fa", "di"}


def test_screen_shares_beyond_n_are_all_in() -> None:
    assert select(PEOPLE, 1, screens={"ed", "fa"}, pinned=["ana"], recency=["bo"]) == {"ed", "fa"}


def test_pins_come_before_speakers_in_pin_order() -> None:
    assert select(PEOPLE, 3, pinned=["fa", "ed"], recency=["bo", "cy"]) == {"fa", "ed", "bo"}


def test_pins_beyond_n_are_not_forwarded() -> None:
    assert select(PEOPLE, 2, pinned=["fa", "ed", "di"], recency=["bo"]) == {"fa", "ed"}


def test_screen_then_pins_then_speakers() -> None:
    chosen = select(PEOPLE, 3, screens={"cy"}, pinned=["ed"], recency=["bo", "ana"])
    assert chosen == {"cy", "ed", "bo"}


def test_pinning_a_screen_sharer_does_not_count_twice() -> None:
    assert select(PEOPLE, 2, screens={"cy"}, pinned=["cy"], recency=["bo"]) == {"cy", "bo"}


def test_visible_tiles_are_preferred_over_more_recent_hidden_ones() -> None:
    chosen = select(PEOPLE, 2, visible={"ed", "fa", "ana"}, recency=["bo", "fa", "ana", "ed"])
    assert chosen == {"fa", "ana"}  # bo spoke last but is scrolled away


def test_hidden_tiles_still_fill_what_visible_ones_leave() -> None:
    assert select(PEOPLE, 3, visible={"ed"}, recency=["bo", "cy"]) == {"ed", "bo", "cy"}


def test_an_empty_visible_report_means_no_preference_between_hidden_tiles() -> None:
    assert select(PEOPLE, 2, visible=set(), recency=["cy", "ana"]) == {"cy", "ana"}


def test_pins_and_visibility_of_people_not_publishing_are_ignored() -> None:
    chosen = select(["ana", "bo", "cy"], 2, screens={"zed"}, pinned=["zed", "cy"], visible={"zed"})
    assert chosen == {"cy", "ana"}


def test_n_zero_or_less_forwards_only_screens() -> None:
    assert select(PEOPLE, 0, screens={"bo"}, pinned=["ana"]) == {"bo"}


def test_it_is_deterministic_whatever_the_input_collections() -> None:
    a = select(list(PEOPLE), 3, screens=frozenset({"ed"}), pinned=("cy",), visible=frozenset(PEOPLE))
    b = select(tuple(PEOPLE), 3, screens=["ed"], pinned=["cy", "cy"], visible=set(PEOPLE))
    assert a == b == {"ed", "cy", "ana"}


@pytest.mark.parametrize("n", range(1, 8))
def test_never_more_than_n_without_screens(n: int) -> None:
    chosen = select(PEOPLE, n, pinned=["fa", "bo"], recency=["cy", "di"], visible={"ana"})
    assert len(chosen) == min(n, len(PEOPLE)) and chosen <= set(PEOPLE)


def test_default_n_is_eight() -> None:
    assert DEFAULT_LAST_N == 8


# -- frame rates (temporal layers) -------------------------------------------------------------------


def test_the_speaker_gets_full_rate_and_thumbnails_a_quarter() -> None:
    chosen = ["ana", "bo", "cy", "di", "ed", "fa"]
    layers = temporal_layers(chosen, recency=["cy", "ana"])
    assert layers == {p: FULL_RATE if p == "cy" else QUARTER_RATE for p in chosen}


def test_a_few_big_tiles_get_half_the_rate() -> None:
    assert temporal_layers(["ana", "bo", "cy"], recency=["bo"]) == {"ana": HALF_RATE, "bo": FULL_RATE, "cy": HALF_RATE}


def test_the_speaker_is_the_most_recent_one_among_the_chosen() -> None:
    # the subscriber itself (or someone not forwarded) spoke last: the speaker before them counts
    layers = temporal_layers(["ana", "bo", "cy", "di", "ed"], recency=["me", "zed", "di", "bo"])
    assert [p for p, layer in layers.items() if layer == FULL_RATE] == ["di"]


def test_pinned_participants_get_full_rate() -> None:
    layers = temporal_layers(["ana", "bo", "cy", "di", "ed"], recency=["ana"], pinned={"ed"})
    assert {p for p, layer in layers.items() if layer == FULL_RATE} == {"ana", "ed"}


def test_a_lone_video_gets_full_rate_before_anyone_spoke() -> None:
    assert temporal_layers(["ana"]) == {"ana": FULL_RATE}
    assert set(temporal_layers(["ana", "bo"]).values()) == {HALF_RATE}
    assert temporal_layers([]) == {}
