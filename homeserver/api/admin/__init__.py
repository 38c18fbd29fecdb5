"""The Synapse-compatible admin API (`/_synapse/admin/...`), one module per feature as
Synapse's admin API documents it (these endpoints have no OpenAPI file in the spec).

`MODULES` go on listeners that serve the `admin` resource, and on `client` listeners as
Synapse does.
"""

from homeserver.api.admin import audit_log, purge_history, register, room_membership, rooms, user_ratelimit

MODULES = [register, audit_log, user_ratelimit, rooms, room_membership, purge_history]
