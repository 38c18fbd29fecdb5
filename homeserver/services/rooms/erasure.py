"""Erased users: accounts deactivated with `erase` (by themselves or an admin).

Spec (Account deactivation, `erase`) and Synapse: their events are served redacted to users
who were not in the room when the events were sent, and to other servers. Every batch of
events served asks which of its senders are erased, so the answer is cached per user (most
senders are not); a change drops the user's answer here and, through `replicate`, in the
other processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from storage.accounts import AccountStore

CACHE_LIMIT = 100_000


class ErasedUsers:
    def __init__(self, accounts: AccountStore) -> None:
        self._accounts = accounts
        self._known: dict[str, bool] = {}
        # Set by the app: tell the other processes a user's erasure changed.
        self.replicate: Callable[[str], None] | None = None

    async def among(self, user_ids: Iterable[str]) -> set[str]:
        """Those of `user_ids` who are erased: one query at most, for the ones not cached."""
        wanted = set(user_ids)
        unknown = [u for u in wanted if u not in self._known]
        if unknown:
            erased = await self._accounts.erased_among(unknown)
            if len(self._known) + len(unknown) > CACHE_LIMIT:
                self._known.clear()
            for user_id in unknown:
                self._known[user_id] = user_id in erased
        return {u for u in wanted if self._known.get(u)}

    def changed(self, user_id: str) -> None:
        """The user was erased, or reactivated (no longer erased)."""
        self.forget_cached(user_id)
        if self.replicate is not None:
            self.replicate(user_id)

    def forget_cached(self, user_id: str) -> None:
        self._known.pop(user_id, None)
