"""Services: the use cases (register, log in, create a room, send an event, sync...).

They call the protocol core, the stores and the federation plumbing, and never see an HTTP
request. May import `storage`, `federation` plumbing, `homeserver.core`, `homeserver.config`
and `homeserver.errors`; never `homeserver.api` or `homeserver.app`.

One package per domain, each saying in its docstring what it holds and what it may use
(the "Service packages point one way" contract in pyproject.toml holds them to it):

    admin/ sync/ federation/  operations (health checks); what clients long-poll; rooms and
                              users across servers
    e2ee/ identity/           device keys, cross-signing, key backup; invites by e-mail
    accounts/ ephemeral/ push/ media/ calls/
    rooms/                    the event graph and a room's use cases
    streams/                  stream positions and wake-ups

Top level, what every domain shares: `graph` (the `Services` record the transports read),
`replication` (processes sharing one database), `auth` (access tokens -> `Requester`),
`ratelimit` and `clock`.
"""
