"""Federation: the wire between servers (discovery, request signing, keys, client, sender, TLS)
and `api/`, the handlers of the server-server API. Plumbing modules may import `storage` and
`homeserver.core`; `federation.api` may also import `homeserver.services`.
"""
