"""UnreadCounts: counts kept in memory only while nothing could have moved them unseen."""

from homeserver.services.push.unread import UnreadCounts
from homeserver.services.streams.tracker import StreamTracker
from storage.push import PushAction


def counts(notify=0, highlight=0, threads=None):
    return {"notification_count": notify, "highlight_count": highlight, "threads": threads or {}}


def action(user, room, *, thread=None, notify=True, highlight=False):
    return PushAction(user, room, "$e", 1, thread, notify, highlight, [], 0)


def make():
    events, aux = StreamTracker(0), StreamTracker(0)
    return UnreadCounts(events, aux, 1 << 20), events, aux


def test_new_actions_move_the_kept_counts():
    unread, *_ = make()
    unread.keep(unread.token(), "@a", "!r", counts(2))
    with unread.changing():
        unread.added([action("@a", "!r", highlight=True), action("@a", "!r", thread="$root"),
                      action("@b", "!r"), action("@a", "!other")])
    assert unread.get("@a", "!r") == counts(3, 1, {"$root": {"notification_count": 1, "highlight_count": 0}})
    assert unread.get("@b", "!r") is None  # never counted: nothing to move


def test_a_count_read_while_something_changed_is_not_kept():
    unread, *_ = make()
    token = unread.token()
    with unread.changing():  # actions stored while the count was read
        unread.keep(unread.token(), "@a", "!r", counts(1))  # and one read during the change
    unread.keep(token, "@a", "!r", counts(1))
    assert unread.get("@a", "!r") is None
    unread.keep(unread.token(), "@a", "!r", counts(1))
    assert unread.get("@a", "!r") == counts(1)


def test_receipts_redactions_and_other_processes_drop_kept_counts():
    unread, events, aux = make()
    unread.keep(unread.token(), "@a", "!r", counts(1))
    unread.keep(unread.token(), "@b", "!r", counts(1))
    with unread.read_moving("@a", "!r"):
        pass
    assert unread.get("@a", "!r") is None and unread.get("@b", "!r") == counts(1)
    unread.forget_room("!r")
    assert unread.get("@b", "!r") is None
    unread.keep(unread.token(), "@a", "!r", counts(1))
    aux.finish_remote([1])  # another process wrote a receipt (or anything on the aux stream)
    assert unread.get("@a", "!r") is None
    unread.keep(unread.token(), "@a", "!r", counts(1))
    events.finish_remote([1])  # another process's events may carry push actions
    assert unread.get("@a", "!r") is None


def test_what_is_handed_out_is_a_copy():
    unread, *_ = make()
    unread.keep(unread.token(), "@a", "!r", counts(1))
    got = unread.get("@a", "!r")
    got["notification_count"] = 99
    assert unread.get("@a", "!r") == counts(1)
