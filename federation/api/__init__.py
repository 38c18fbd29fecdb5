"""Server-server API handlers: one module per OpenAPI file of the spec's server-server API."""

from federation.api import (
    backfill, content_repository, event_auth, events, invites_v1, invites_v2, joins_v1, joins_v2, keys_query,
    keys_server, knocks, leaving_v1, leaving_v2, public_rooms, query, space_hierarchy, transactions, user_devices,
    user_keys, version, wellknown,
)
from federation.api import openid

# Served on listeners with the `client` resource too: it is how peers find our federation port.
WELL_KNOWN_MODULES = [wellknown]
# The `federation` resource: /_matrix/federation/...
FEDERATION_MODULES = [version, query, transactions, joins_v1, joins_v2, leaving_v1, leaving_v2, knocks, invites_v1,
                      invites_v2, events, event_auth, backfill, public_rooms, user_devices, user_keys,
                      content_repository, space_hierarchy]
FEDERATION_MODULES += [openid]  # asked by third parties (widgets), not servers: no X-Matrix
# The `keys` resource: /_matrix/key/v2/... (our keys and the notary API).
KEY_MODULES = [keys_server, keys_query]

# Identity servers' callback when an invited e-mail address gets bound (PUT per the spec, POST
# as identity servers send it).
from federation.api import third_party_invite, third_party_onbind_post  # noqa: E402

FEDERATION_MODULES += [third_party_invite, third_party_onbind_post]
