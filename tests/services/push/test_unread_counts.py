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


async def test_members_evaluated_first_read_their_counts_before_the_others():
    import asyncio

    unread, *_ = make()
    loop = asyncio.get_running_loop()
    written, counted, first = loop.create_future(), loop.create_future(), loop.create_future()
    unread.evaluating("!r", written, counted)
    unread.evaluating_first("!r", counted, frozenset({"@a"}), first)
    mine = asyncio.ensure_future(unread.counted(["!r"], "@a"))
    other = asyncio.ensure_future(unread.counted(["!r"], "@b"))
    anyone = asyncio.ensure_future(unread.counted(["!r"]))
    await asyncio.sleep(0.01)
    assert not mine.done()
    first.set_result(None)  # @a's counts include the events: @a goes on, the others wait
    await asyncio.wait_for(mine, 1)
    await asyncio.sleep(0.01)
    assert not other.done() and not anyone.done()
    # A newer batch: nobody's counts include it, @a waits for all of it.
    written2, counted2 = loop.create_future(), loop.create_future()
    unread.evaluating("!r", written2, counted2)
    again = asyncio.ensure_future(unread.counted(["!r"], "@a"))
    await asyncio.sleep(0.01)
    assert not again.done()
    counted.set_result(None)
    await asyncio.wait_for(asyncio.gather(other, anyone), 1)
    await asyncio.sleep(0.01)
    assert not again.done()
    counted2.set_result(None)
    await asyncio.wait_for(again, 1)
