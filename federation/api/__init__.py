"""Server-server API handlers: one module per OpenAPI file of the spec's server-server API."""

from federation.api import wellknown

# Served on listeners with the `client` resource too: it is how peers find our federation port.
WELL_KNOWN_MODULES = [wellknown]
