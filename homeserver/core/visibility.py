"""History visibility: may a user see an event?

https://spec.matrix.org/v1.19/client-server-api/#history-visibility ("Server behaviour").
Pure: the caller passes the room's history_visibility changes and the user's membership
changes, each as (stream position, value) in order, so a whole page of events is filtered
without reading state per event.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

KNOWN = frozenset({"world_readable", "shared", "invited", "joined"})


class VisibilityTimeline:
    def __init__(self, visibility_changes: Sequence[tuple[int, str]], membership_changes: Sequence[tuple[int, str]]) -> None:
        self._vis_pos = [p for p, _ in visibility_changes]
        self._vis = [v if v in KNOWN else "shared" for _, v in visibility_changes]
        self._mem_pos = [p for p, _ in membership_changes]
        self._mem = [m for _, m in membership_changes]
        self._join_positions = [p for p, m in membership_changes if m == "join"]

    def _visibility_before(self, position: int) -> str:
        i = bisect.bisect_left(self._vis_pos, position)
        # No history_visibility yet, or an unknown value: `shared`.
        return self._vis[i - 1] if i else "shared"

    def _visibility_after(self, position: int) -> str:
        i = bisect.bisect_right(self._vis_pos, position)
        return self._vis[i - 1] if i else "shared"

    def _membership_before(self, position: int) -> str | None:
        i = bisect.bisect_left(self._mem_pos, position)
        return self._mem[i - 1] if i else None

    def _membership_after(self, position: int) -> str | None:
        i = bisect.bisect_right(self._mem_pos, position)
        return self._mem[i - 1] if i else None

    def _allowed(self, visibility: str, membership: str | None, position: int) -> bool:
        if visibility == "world_readable":                               # rule 1
            return True
        if membership == "join":                                         # rule 2
            return True
        if visibility == "shared" and self._joined_after(position):      # rule 3
            return True
        return visibility == "invited" and membership == "invite"        # rule 4 (else 5: deny)

    def _joined_after(self, position: int) -> bool:
        i = bisect.bisect_right(self._join_positions, position)
        return i < len(self._join_positions)

    def joined_at(self, position: int) -> bool:
        """Whether the user was joined to the room when the event at `position` was sent."""
        return self._membership_before(position) == "join"

    def can_see(self, position: int, *, is_visibility_event: bool = False, is_own_membership: bool = False) -> bool:
        """Whether the user may see the event at stream `position` (its state is 'at the event')."""
        visibility = self._visibility_before(position)
        membership = self._membership_before(position)
        if self._allowed(visibility, membership, position):
            return True
        # The visibility event itself, and the user's own member events: before OR after.
        if is_visibility_event and self._allowed(self._visibility_after(position), membership, position):
            return True
        if is_own_membership and self._allowed(visibility, self._membership_after(position), position):
            return True
        return False
