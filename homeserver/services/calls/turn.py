"""TURN credentials for VoIP calls (GET /voip/turnServer).

With `voip.turn_shared_secret`, each user gets short-lived credentials in the TURN REST API
scheme that coturn's `use-auth-secret` checks: the username is "<expiry in seconds>:<user ID>"
and the password the base64 HMAC-SHA1 of that username under the shared secret. Otherwise the
static `turn_username`/`turn_password` are handed out. With no `turn_uris` the answer is
empty, as Synapse's: clients then fall back to their own STUN/TURN settings.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from homeserver.config import VoipConfig
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock


class TurnService:
    def __init__(self, config: VoipConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock

    def credentials(self, requester: Requester) -> dict[str, Any]:
        config = self._config
        if requester.is_guest and not config.turn_allow_guests:
            raise MatrixError(403, Codes.FORBIDDEN, "Guest users may not use the TURN server")
        ttl_s = config.turn_user_lifetime_ms // 1000
        if not config.turn_uris:
            return {}
        if config.turn_shared_secret:
            expiry_s = self._clock.now_ms() // 1000 + ttl_s
            username = f"{expiry_s}:{requester.user_id}"
            mac = hmac.new(config.turn_shared_secret.encode(), username.encode(), hashlib.sha1).digest()
            password = base64.b64encode(mac).decode()
        elif config.turn_username and config.turn_password:
            username, password = config.turn_username, config.turn_password
        else:
            return {}
        return {"username": username, "password": password, "uris": list(config.turn_uris), "ttl": ttl_s}
