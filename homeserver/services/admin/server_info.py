"""What the server is: its version, its background updates, and which rooms take the most
database space (Synapse's version, background updates and database statistics admin APIs).

ChatGO has no background updates: every schema change is a numbered migration applied before
the server starts serving (storage/migrate.py), and what Synapse rebuilds in background jobs
(room statistics, the user directory) ChatGO reads live from the current state. So the status
is truthfully "enabled, nothing running"; pausing is remembered for this process (as Synapse,
not across restarts) but pauses nothing; and of Synapse's jobs, those whose results ChatGO
keeps up to date anyway are accepted as already done, any other is refused.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.audit import AdminAuditLog
from storage.statistics import StatisticsQueries

# Synapse's start_job names whose outcome ChatGO always has: room statistics and the user
# directory are computed from the current state when asked for.
ALWAYS_UP_TO_DATE_JOBS = frozenset({"populate_stats_process_rooms", "regenerate_directory"})


def _package_version() -> str:
    try:
        return version("chatgo")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "unknown"


class ServerInfoService:
    def __init__(self, statistics: StatisticsQueries, audit: AdminAuditLog) -> None:
        self._statistics = statistics
        self._audit = audit
        self._version = f"ChatGO {_package_version()}"
        self._background_updates_enabled = True

    async def largest_rooms(self) -> list[tuple[str, int]]:
        """The 10 rooms estimated to take the most database space, with their bytes."""
        return await self._statistics.largest_rooms(10)

    def server_version(self) -> str:
        return self._version

    def background_updates_status(self) -> dict[str, Any]:
        """Synapse's status body: no database has an update running."""
        return {"enabled": self._background_updates_enabled, "current_updates": {}}

    def background_updates_enabled(self) -> bool:
        return self._background_updates_enabled

    async def set_background_updates_enabled(self, admin_id: str, enabled: Any) -> bool:
        if not isinstance(enabled, bool):
            raise MatrixError(400, Codes.BAD_JSON, "'enabled' must be a boolean")
        self._background_updates_enabled = enabled
        await self._audit.record(admin_id, "background_updates.enable", None, enabled=enabled)
        return enabled

    async def start_background_job(self, admin_id: str, job_name: Any) -> None:
        """Accept a job whose result ChatGO always has; 400 for any other name."""
        if job_name is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing params: ['job_name']")
        if not isinstance(job_name, str) or job_name not in ALWAYS_UP_TO_DATE_JOBS:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid job_name: {job_name}")
        await self._audit.record(admin_id, "background_updates.start_job", None, job_name=job_name)
