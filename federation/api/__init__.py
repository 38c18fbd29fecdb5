"""Server-server API handlers: one module per OpenAPI file of the spec's server-server API."""

from federation.api import keys_query, keys_server, query, version, wellknown

# Served on listeners with the `client` resource too: it is how peers find our federation port.
WELL_KNOWN_MODULES = [wellknown]
# The `federation` resource: /_matrix/federation/...
FEDERATION_MODULES = [version, query]
# The `keys` resource: /_matrix/key/v2/... (our keys and the notary API).
KEY_MODULES = [keys_server, keys_query]
