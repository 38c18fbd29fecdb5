"""Federation: the wire between servers, and `api/`, the handlers of the server-server API.

Plumbing, top down (each may import those below it, `storage` and `homeserver.core`):
`sender` (the persisted outbound queue: transactions, back-off, catch-up) and
`request_auth` (X-Matrix checks of incoming requests) -> `keys` (our key response, the
keyring) -> `client` (signed JSON requests) -> `discovery` (server name -> routes) ->
`transport` (the session: TLS, IP denylist, timeouts) and `tls` (certificates for our
listeners). `federation.api` may also import `homeserver.services`.
"""
