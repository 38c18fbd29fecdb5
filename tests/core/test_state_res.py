"""State resolution v1, v2 and v2.1 on forked histories, asserting exact resolved states.

Each scenario builds a room DAG with explicit auth events, forks it, and resolves the states
at the fork tips; the comments give the spec's reasoning for the expected result.
"""

from __future__ import annotations

import pytest

from homeserver.core.events import Event, make_event
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS as V
from homeserver.core.state_res import resolve_state, split_conflicts
from homeserver.core.state_res.sorting import mainline_sort, reverse_topological_power_sort
from homeserver.core.state_res.v2 import conflicted_subgraph

A, B, C = "@alice:a.org", "@bob:a.org", "@carol:a.org"


class Dag:
    """Builds events with auth events chosen from a given state, the way a server would."""

    def __init__(self, version: str):
        self.v = V[version]
        self.events: dict[str, Event] = {}
        self.ts = 0

    def create(self) -> dict:
        content = {"room_version": self.v.identifier}
        if not self.v.auth.implicit_room_creator:
            content["creator"] = A
        room_id = None if self.v.auth.room_id_from_create_event else "!room:a.org"
        ev = self._make(A, "m.room.create", content, "", room_id=room_id, auth=[], prev=[])
        self.room_id = ev.room_id
        return {("m.room.create", ""): ev.event_id}

    def _make(self, sender, event_type, content, state_key, *, auth, prev, room_id="default", ts=None):
        self.ts += 10
        kwargs = dict(type=event_type, sender=sender, content=content, state_key=state_key,
                      prev_events=prev, auth_events=auth, depth=len(self.events) + 1,
                      origin_server_ts=self.ts if ts is None else ts)
        kwargs["room_id"] = self.room_id if room_id == "default" else room_id
        if self.v.event_format.value == 1:
            kwargs["event_id"] = f"${len(self.events)}x{event_type}:a.org"
        ev = make_event(self.v, **kwargs)
        self.events[ev.event_id] = ev
        return ev

    def add(self, state: dict, sender, event_type, content, state_key="", ts=None) -> dict:
        keys = [("m.room.power_levels", ""), ("m.room.member", sender)]
        if self.v.auth.create_event_in_auth_events:
            keys.insert(0, ("m.room.create", ""))
        if event_type == "m.room.member":
            keys.append(("m.room.member", state_key))
            if content.get("membership") in ("join", "invite"):
                keys.append(("m.room.join_rules", ""))
        auth = list(dict.fromkeys(state[k] for k in keys if k in state))
        ev = self._make(sender, event_type, content, state_key, auth=auth, prev=[], ts=ts)
        new = dict(state)
        new[(event_type, state_key)] = ev.event_id
        return new

    def chain(self, state: dict) -> frozenset[str]:
        out: set[str] = set()
        stack = [a for e in state.values() for a in self.events[e].auth_event_ids]
        while stack:
            event_id = stack.pop()
            if event_id not in out:
                out.add(event_id)
                stack.extend(self.events[event_id].auth_event_ids)
        return frozenset(out)

    def resolve(self, *states: dict) -> dict:
        return resolve_state(self.v, list(states), self.events, [self.chain(s) for s in states])


def base_room(version: str, levels: dict) -> tuple[Dag, dict]:
    dag = Dag(version)
    state = dag.create()
    state = dag.add(state, A, "m.room.member", {"membership": "join"}, A)
    state = dag.add(state, A, "m.room.power_levels", levels)
    state = dag.add(state, A, "m.room.join_rules", {"join_rule": "public"})
    state = dag.add(state, B, "m.room.member", {"membership": "join"}, B)
    return dag, state


def users(version: str, **others) -> dict:
    """A power levels content: Alice (the creator) at 100 unless v12, plus others."""
    table = dict(others)
    if not V[version].auth.privileged_room_creators:
        table[A] = 100
    return {"users": table}


@pytest.mark.parametrize("version", ["2", "6", "11", "12"])
def test_ban_beats_a_concurrent_change_by_the_banned_user(version):
    dag, common = base_room(version, {**users(version), "state_default": 0})
    banned = dag.add(common, A, "m.room.member", {"membership": "ban"}, B)
    topic = dag.add(common, B, "m.room.topic", {"topic": "mine now"})
    resolved = dag.resolve(banned, topic)
    # The ban is a power event, applied in step 2; Bob's topic then fails rule 6 in step 4.
    assert resolved[("m.room.member", B)] == banned[("m.room.member", B)]
    assert ("m.room.topic", "") not in resolved


@pytest.mark.parametrize("version", ["2", "11", "12"])
def test_power_level_race_revokes_the_concurrent_state_change(version):
    dag, common = base_room(version, users(version, **{B: 50}))
    demoted = dag.add(common, A, "m.room.power_levels", users(version))
    topic = dag.add(common, B, "m.room.topic", {"topic": "from bob"})
    resolved = dag.resolve(demoted, topic)
    assert resolved[("m.room.power_levels", "")] == demoted[("m.room.power_levels", "")]
    assert ("m.room.topic", "") not in resolved


def test_v1_resets_where_v2_does_not():
    # The same race in room v1: the topic conflict is resolved by depth and, when no
    # candidate passes auth, v1 still keeps one -- the state reset v2 was made to fix.
    dag, common = base_room("1", users("1", **{B: 50}))
    demoted = dag.add(common, A, "m.room.power_levels", users("1"))
    topic = dag.add(common, B, "m.room.topic", {"topic": "from bob"})
    resolved = dag.resolve(demoted, topic)
    assert resolved[("m.room.power_levels", "")] == demoted[("m.room.power_levels", "")]
    assert resolved[("m.room.topic", "")] == topic[("m.room.topic", "")]


def test_v1_power_levels_by_ascending_depth_while_allowed():
    dag, common = base_room("1", users("1", **{B: 100}))
    by_alice = dag.add(common, A, "m.room.power_levels", users("1", **{B: 100, C: 10}))
    # Bob's change demotes Alice: allowed only if Bob outranks her, which he does not.
    by_bob = dag.add(common, B, "m.room.power_levels", {"users": {A: 50, B: 100}})
    resolved = dag.resolve(by_alice, by_bob)
    # Ascending depth: Alice's (shallower) first, then Bob's is checked against it and fails.
    assert resolved[("m.room.power_levels", "")] == by_alice[("m.room.power_levels", "")]


@pytest.mark.parametrize("version", ["2", "12"])
def test_join_rules_race(version):
    dag, common = base_room(version, users(version))
    invite_only = dag.add(common, A, "m.room.join_rules", {"join_rule": "invite"})
    carol = dag.add(common, C, "m.room.member", {"membership": "join"}, C)
    resolved = dag.resolve(invite_only, carol)
    # Join rules are power events and go first; Carol's join then fails the invite rule.
    assert resolved[("m.room.join_rules", "")] == invite_only[("m.room.join_rules", "")]
    assert ("m.room.member", C) not in resolved


@pytest.mark.parametrize("version", ["2", "12"])
def test_concurrent_topics_ordered_by_timestamp(version):
    dag, common = base_room(version, {**users(version), "state_default": 0})
    later = dag.add(common, A, "m.room.topic", {"topic": "later"}, ts=1000)
    earlier = dag.add(common, B, "m.room.topic", {"topic": "earlier"}, ts=500)
    resolved = dag.resolve(later, earlier)
    # Same mainline position: ascending origin_server_ts; the last applied (later) wins.
    assert resolved[("m.room.topic", "")] == later[("m.room.topic", "")]


@pytest.mark.parametrize("version", ["2", "12"])
def test_unconflicted_state_is_kept(version):
    dag, common = base_room(version, {**users(version), "state_default": 0})
    named = dag.add(common, A, "m.room.name", {"name": "shared"})
    left = dag.add(named, A, "m.room.topic", {"topic": "left"})
    right = dag.add(named, B, "m.room.topic", {"topic": "right"})
    resolved = dag.resolve(left, right)
    assert resolved[("m.room.name", "")] == named[("m.room.name", "")]
    assert resolved[("m.room.member", B)] == common[("m.room.member", B)]


def test_v2_and_v21_differ_when_the_unconflicted_state_came_later():
    # Bob (100) changes the join rules; Alice later demotes Bob. One state set has both,
    # another has the demotion but not Bob's change. v2 checks Bob's change against the
    # unconflicted (later) power levels and drops it; v2.1 starts from an empty map, so it
    # is checked against the power levels it was sent under, and kept.
    results = {}
    for version in ("11", "12"):
        dag, common = base_room(version, users(version, **{B: 100}))
        with_rules = dag.add(common, B, "m.room.join_rules", {"join_rule": "invite"})
        demotion = users(version, **{B: 0})
        s1 = dag.add(with_rules, A, "m.room.power_levels", demotion)
        s2 = dict(common)
        s2[("m.room.power_levels", "")] = s1[("m.room.power_levels", "")]
        resolved = dag.resolve(s1, s2)
        results[version] = dag.events[resolved[("m.room.join_rules", "")]].content["join_rule"]
    assert results == {"11": "public", "12": "invite"}


def test_single_state_set_is_returned_as_is():
    dag, common = base_room("12", users("12"))
    assert dag.resolve(common) == common
    assert resolve_state(V["12"], [], dag.events, []) == {}


def test_split_conflicts_counts_a_missing_key_as_a_conflict():
    unconflicted, conflicted = split_conflicts([{("a", ""): "$1", ("b", ""): "$2"}, {("a", ""): "$1"}])
    assert unconflicted == {("a", ""): "$1"}
    assert conflicted == {("b", ""): {"$2"}}


def test_reverse_topological_power_sort_tie_breaks():
    dag, common = base_room("12", {"users": {B: 50}, "state_default": 0})
    # Same power, same timestamp: by event ID. Higher power first regardless of time.
    x = dag.add(common, B, "m.room.topic", {"topic": "x"}, ts=5)[("m.room.topic", "")]
    y = dag.add(common, B, "m.room.name", {"name": "y"}, ts=5)[("m.room.name", "")]
    z = dag.add(common, A, "m.room.avatar", {"url": "mxc://a/z"}, ts=9)[("m.room.avatar", "")]
    order = reverse_topological_power_sort([x, y, z], dag.events)
    assert order == [z] + sorted([x, y])
    # Auth dependencies come first whatever the power: the join before Bob's event.
    join = common[("m.room.member", B)]
    assert reverse_topological_power_sort([x, join], dag.events) == [join, x]


def test_mainline_sort_older_power_levels_first():
    dag, common = base_room("12", {"users": {B: 50}, "state_default": 0})
    old_pl = common[("m.room.power_levels", "")]
    early = dag.add(common, B, "m.room.topic", {"topic": "early"}, ts=900)[("m.room.topic", "")]
    newer = dag.add(common, A, "m.room.power_levels", {"users": {B: 60}, "state_default": 0})
    late = dag.add(newer, B, "m.room.name", {"name": "late"}, ts=100)[("m.room.name", "")]
    order = mainline_sort([late, early], newer[("m.room.power_levels", "")], dag.events)
    # `early` is based on the older power levels (a greater mainline position): first,
    # even though its timestamp is later.
    assert order == [early, late]
    assert old_pl in dag.events


def test_conflicted_subgraph_includes_events_between_conflicted_ones():
    dag, common = base_room("12", {"users": {B: 100}})
    pl1 = common[("m.room.power_levels", "")]
    s2 = dag.add(common, B, "m.room.join_rules", {"join_rule": "invite"})
    jr = s2[("m.room.join_rules", "")]
    s3 = dag.add(s2, B, "m.room.power_levels", {"users": {B: 100, C: 1}})
    pl2 = s3[("m.room.power_levels", "")]
    # pl2 -> pl1 (auth) and jr -> pl1: with {pl2, pl1} conflicted, the path pl2 -> pl1 is the subgraph.
    graph = conflicted_subgraph({pl2, pl1}, dag.events)
    assert {pl1, pl2} <= graph
    assert jr not in graph  # jr is not on a path between the two
    assert common[("m.room.create", "")] not in graph  # below pl1, not between conflicted events
