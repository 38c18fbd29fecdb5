"""Services: the frozen record of every service the transports may call, built by `app.py`."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.config import Config
from homeserver.services.accounts import AccountService
from homeserver.services.auth import AuthService
from homeserver.services.devices import DeviceService
from homeserver.services.ratelimit import RateLimiter
from homeserver.services.registration_tokens import RegistrationTokenService
from homeserver.services.uia import UIAService


@dataclass(frozen=True)
class Services:
    config: Config
    auth: AuthService
    rate_limiter: RateLimiter
    uia: UIAService
    devices: DeviceService
    accounts: AccountService
    registration_tokens: RegistrationTokenService
