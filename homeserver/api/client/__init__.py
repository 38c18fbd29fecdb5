"""Client-server API handlers: one module per OpenAPI file of the spec's client-server API.

`MODULES` is the list `app.py` installs on listeners that serve the `client` resource;
`MEDIA_MODULES` (the media repository) go on listeners that serve `client` or `media`.
"""

from homeserver.api.client import (
    account_data,
    admin,
    account_deactivation,
    banning,
    capabilities,
    cross_signing,
    create_room,
    device_management,
    directory,
    event_context,
    filter,
    inviting,
    joining,
    key_backup,
    keys,
    kicking,
    knocking,
    leaving,
    list_joined_rooms,
    list_public_rooms,
    login,
    logout,
    message_pagination,
    notifications,
    openid,
    password_management,
    presence,
    profile,
    pusher,
    pushrules,
    read_markers,
    receipts,
    redaction,
    refresh,
    registration,
    registration_tokens,
    relations,
    room_event_by_timestamp,
    room_send,
    room_state,
    rooms,
    search,
    sliding_sync,
    sync,
    tags,
    threads_list,
    to_device,
    typing,
    users,
    versions,
    wellknown,
    whoami,
)
from homeserver.api.client import authed_content_repo, content_repo

MODULES = [
    versions, wellknown, capabilities, registration, registration_tokens, login, logout,
    whoami, admin, password_management, account_deactivation, refresh, device_management,
    create_room, room_send, room_state, rooms, joining, leaving, inviting, kicking, banning,
    knocking, list_joined_rooms, message_pagination, redaction, profile, directory, list_public_rooms,
    relations, threads_list, event_context, room_event_by_timestamp, search, users,
    pushrules, pusher, notifications,
    sync, filter, account_data, tags, openid, receipts, read_markers, typing, presence, to_device,
    keys, cross_signing, key_backup, sliding_sync,
]

MEDIA_MODULES = [content_repo, authed_content_repo]
