"""Services: the use cases (register, log in, create a room, send an event, sync...).

They call the protocol core, the stores and the federation plumbing, and never see an HTTP
request. May import `storage`, `federation` plumbing, `homeserver.core`, `homeserver.config`
and `homeserver.errors`; never `homeserver.api` or `homeserver.app`.
"""
