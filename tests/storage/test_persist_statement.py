"""The message-only form of the persist statement: the full one without the CTEs a batch of
messages passes empty arrays to, its parameters renumbered consistently."""

from __future__ import annotations

import re

from storage.events import _MESSAGES_PARAMETERS, _PERSIST, _PERSIST_MESSAGES, _leave_out

STATEMENT = """WITH
a AS (SELECT $1::text, $2::int),
-- b's comment
b AS (SELECT $3::text, $1::text),
c AS (SELECT $4::bigint, $2::int)
SELECT $5::bool"""


def test_leave_out_drops_the_named_ctes_and_renumbers_the_rest():
    statement, kept = _leave_out(STATEMENT, {"b"})
    assert kept == [1, 2, 4, 5]
    assert "b AS" not in statement and "$3::text" not in statement
    assert "c AS (SELECT $3::bigint, $2::int)" in statement and statement.endswith("SELECT $4::bool")


def test_messages_statement_writes_no_state_and_keeps_every_parameter_it_uses():
    for table in ("state_groups", "state_group_entries", "current_state", "room_stats", "room_memberships",
                  "redactions", "UPDATE rooms"):
        assert table not in _PERSIST_MESSAGES
    numbers = {int(n) for n in re.findall(r"\$(\d+)", _PERSIST_MESSAGES)}
    assert numbers == set(range(1, len(_MESSAGES_PARAMETERS) + 1))  # no gap: every $n has a type
    assert len(_MESSAGES_PARAMETERS) < len(set(re.findall(r"\$(\d+)", _PERSIST)))
