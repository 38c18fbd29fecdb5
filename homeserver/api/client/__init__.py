"""Client-server API handlers: one module per OpenAPI file of the spec's client-server API.

`MODULES` is the list `app.py` installs on listeners that serve the `client` resource.
"""

from homeserver.api.client import (
    account_deactivation,
    banning,
    capabilities,
    create_room,
    device_management,
    directory,
    event_context,
    filter,
    inviting,
    joining,
    kicking,
    knocking,
    leaving,
    list_joined_rooms,
    list_public_rooms,
    login,
    logout,
    message_pagination,
    password_management,
    profile,
    redaction,
    refresh,
    relations,
    registration,
    registration_tokens,
    room_event_by_timestamp,
    room_send,
    room_state,
    rooms,
    search,
    sync,
    threads_list,
    users,
    versions,
    wellknown,
    whoami,
)

MODULES = [
    versions, wellknown, capabilities, registration, registration_tokens, login, logout,
    whoami, password_management, account_deactivation, refresh, device_management,
    create_room, room_send, room_state, rooms, joining, leaving, inviting, kicking, banning,
    knocking, list_joined_rooms, message_pagination, redaction, profile, directory, list_public_rooms,
    relations, threads_list, event_context, room_event_by_timestamp, search, users,
    sync, filter,
]
