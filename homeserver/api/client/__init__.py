"""Client-server API handlers: one module per OpenAPI file of the spec's client-server API.

`MODULES` is the list `app.py` installs on listeners that serve the `client` resource.
"""

from homeserver.api.client import (
    account_deactivation,
    capabilities,
    device_management,
    login,
    logout,
    password_management,
    refresh,
    registration,
    registration_tokens,
    versions,
    wellknown,
    whoami,
)

MODULES = [
    versions, wellknown, capabilities, registration, registration_tokens, login, logout,
    whoami, password_management, account_deactivation, refresh, device_management,
]
