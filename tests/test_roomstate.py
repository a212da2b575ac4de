"""The three-way merge of a spanned room's durable state (``cluster/roomstate.py``): what one
half changed since it last read the state lands on what the other half wrote meanwhile."""

from __future__ import annotations

from typing import Any

from cluster.roomstate import merge

OPEN = {"access": "open", "locked": False}


def state(**fields: Any) -> dict[str, Any]:
    return {"settings": OPEN, "revoked": [], "admitted": {}, "banned_clients": [], "banned_names": [],
            "interpreting": {}, **fields}


def test_roles_granted_on_both_halves_are_kept() -> None:
    base = state(admitted={"browser-ana": "host"})
    here = state(admitted={"browser-ana": "host", "browser-bo": "host"})  # the owner made Bo a host
    there = state(admitted={"browser-ana": "host", "browser-cy": "speaker"})  # Cy joined the relay
    assert merge(base, here, there)["admitted"] == {"browser-ana": "host", "browser-bo": "host",
                                                    "browser-cy": "speaker"}


def test_a_browser_removed_here_stays_removed_and_bans_only_grow() -> None:
    base = state(admitted={"browser-ana": "host", "browser-cy": "host"})
    here = state(admitted={"browser-ana": "host"}, banned_clients=["browser-cy"], banned_names=["cy"])
    there = state(admitted={"browser-ana": "host", "browser-cy": "host"}, banned_names=["eve"])
    merged = merge(base, here, there)
    assert merged["admitted"] == {"browser-ana": "host"}
    assert merged["banned_clients"] == ["browser-cy"] and merged["banned_names"] == ["cy", "eve"]


def test_settings_are_the_last_a_host_changed() -> None:
    locked = {"access": "open", "locked": True}
    assert merge(state(), state(), state(settings=locked))["settings"] == locked  # changed there only
    assert merge(state(), state(settings=locked), state())["settings"] == locked  # changed here
