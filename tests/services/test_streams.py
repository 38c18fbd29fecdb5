"""StreamTracker: positions become visible in order, and callbacks fire when they do."""

from homeserver.services.streams import StreamTracker


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
