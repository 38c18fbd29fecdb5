"""Rate limits: per-action token buckets (`RateLimiter`) and the per-origin gate for inbound
federation requests (`OriginLimiter`), configured by `rate_limiting` (Synapse's `rc_*` keys).

The services check the limit where the action happens (the message service for a message,
the membership service for a join), so every route that reaches an action is limited alike.
May use: `storage` (the admins' per-user overrides), `homeserver.config`, `homeserver.errors`.
"""

from homeserver.services.ratelimit.limiter import Action, RateLimiter
from homeserver.services.ratelimit.origins import OriginLimiter

__all__ = ["Action", "OriginLimiter", "RateLimiter"]
