"""StatementLog: every statement the database runs while the log is active, with the rows it
returned, for tests that assert what a request reads (nothing, the same whatever the size)."""

from __future__ import annotations

from storage.database import Database

# The send's own work, done in the background after it answered (push/evaluator.py): its
# push actions and the pusher lookup of their delivery, not what the woken syncs read.
SEND_BACKGROUND = ("INSERT INTO event_push_actions", "FROM pushers WHERE")


class StatementLog:
    """(statement, rows returned) of each statement run while active, but the send's
    background work (SEND_BACKGROUND)."""

    def __init__(self, monkeypatch) -> None:
        self.statements: list[tuple[str, int]] = []
        for name in ("fetch", "fetchrow", "fetchval", "execute"):
            original = getattr(Database, name)

            async def logged(db, query, *args, _original=original, **kwargs):
                result = await _original(db, query, *args, **kwargs)
                rows = len(result) if isinstance(result, list) else int(result is not None)
                statement = " ".join(query.split())
                if not any(part in statement for part in SEND_BACKGROUND):
                    self.statements.append((statement, rows))
                return result
            monkeypatch.setattr(Database, name, logged)

    @property
    def rows(self) -> int:
        return sum(rows for _, rows in self.statements)

    def touching(self, text: str) -> list[str]:
        return [q for q, _ in self.statements if text in q]
