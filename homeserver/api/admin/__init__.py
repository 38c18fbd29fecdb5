"""The Synapse-compatible admin API (`/_synapse/admin/...`), one module per feature as
Synapse's admin API documents it (these endpoints have no OpenAPI file in the spec).

`MODULES` go on listeners that serve the `admin` resource, and on `client` listeners as
Synapse does.
"""

from homeserver.api.admin import appservices, audit_log, purge_history, register, room_membership, rooms, user_ratelimit
from homeserver.api.admin import background_updates, event_reports, federation, media, registration_tokens, \
    server_notices, statistics, user_reports, version
from homeserver.api.admin import account_validity, user_devices, user_moderation, users

MODULES = [register, audit_log, user_ratelimit, rooms, room_membership, purge_history]
# Moderation: media, reports, notices, tokens, federation, server (branch admin-moderation).
MODULES += [registration_tokens, version, background_updates, event_reports, user_reports, federation, media,
            statistics, server_notices]
MODULES += [appservices]  # the appservices and their feeds (branch appservices-2)
MODULES += [users, user_devices, user_moderation, account_validity]  # accounts (branch admin-users)
