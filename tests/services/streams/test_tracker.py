"""StreamTracker: positions become visible in order, and callbacks fire when they do."""

from homeserver.services.streams.tracker import StreamTracker


def test_current_never_passes_an_in_flight_position():
    tracker = StreamTracker(10)
    tracker.start([11])
    tracker.start([12])
    tracker.finish([12])
    assert tracker.current == 10  # 11 is still in flight
    tracker.finish([11])
    assert tracker.current == 12


def test_abandoned_positions_do_not_block():
    tracker = StreamTracker(0)
    tracker.start([1, 2])
    tracker.finish([1, 2])
    assert tracker.current == 2


def test_when_visible_waits_for_lower_positions():
    tracker = StreamTracker(0)
    fired = []
    tracker.start([1])
    tracker.start([2])
    tracker.finish([2])
    tracker.when_visible(2, lambda: fired.append("two"))
    assert fired == []
    tracker.finish([1])
    assert fired == ["two"]
    tracker.when_visible(1, lambda: fired.append("now"))
    assert fired == ["two", "now"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_positions_of_another_process_are_waited_for():
    clock = FakeClock()
    tracker = StreamTracker(10, monotonic=clock)
    tracker.start([12])
    tracker.finish([12])
    assert tracker.current == 10  # 11 is unknown: another process may be writing it
    tracker.finish_remote([11])
    assert tracker.current == 12


def test_an_unknown_gap_is_passed_after_the_timeout_but_own_writes_never_are():
    clock = FakeClock()
    tracker = StreamTracker(10, gap_timeout=2.0, monotonic=clock)
    tracker.start([13])
    tracker.finish_remote([12, 14])
    assert tracker.current == 10
    clock.now = 2.5
    tracker.finish_remote([15])  # any later change re-checks the gap
    assert tracker.current == 12  # 11 was skipped; 13 is ours and still in flight
    tracker.finish([13])
    assert tracker.current == 15


def test_local_finishes_are_reported_for_replication():
    tracker = StreamTracker(0)
    announced = []
    tracker.on_local_finish = announced.append
    tracker.start([1])
    tracker.finish([1])
    tracker.finish_remote([2])
    assert announced == [[1]] and tracker.current == 2


def test_foreign_upto_follows_positions_this_process_did_not_write():
    clock = FakeClock()
    tracker = StreamTracker(10, gap_timeout=2.0, monotonic=clock)
    assert tracker.foreign_upto == 10
    tracker.start([11])
    tracker.finish([11])
    assert tracker.foreign_upto == 10  # our own write
    tracker.finish_remote([13])
    assert tracker.foreign_upto == 13  # another process's, visible or not yet
    assert tracker.current == 11  # 12 is unknown
    tracker.start([14])
    tracker.finish([14])
    clock.now = 3.0
    tracker.start([15])
    tracker.finish([15])  # 12 stayed unknown past the timeout: passed
    assert tracker.current == 15
    assert tracker.foreign_upto == 13
    tracker.start([16, 18])
    tracker.finish([16, 18])
    clock.now = 6.0
    tracker.start([19])
    tracker.finish([19])  # 17, never announced, is passed as well: it counts as foreign
    assert tracker.current == 19
    assert tracker.foreign_upto == 17


def test_a_position_finished_unannounced_is_visible_here_and_told_to_others_later():
    tracker = StreamTracker(10)
    told = []
    tracker.on_local_finish = told.append
    tracker.start([11, 12])
    tracker.finish([11], announce=False)  # its push actions are still being written
    tracker.finish([12])
    assert tracker.current == 12 and told == [[12]]
    tracker.announce([11])
    assert told == [[12], [11]]
