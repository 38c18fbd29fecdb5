"""Federation use cases: rooms and users across servers.

Receiving transactions (`transactions`), checking and storing received PDUs (`pdu_checks`,
`intake`, `remote_state`), joins, leaves, knocks and invites through other servers
(`membership`), the background resync of rooms joined with a partial state (`partial_state`,
faster joins), what peers may read (`reads`), received EDUs (`edus`), what goes out to peers
(`outbound`), and our published server keys (`server_keys`). The wire itself (keys, signed
requests, the sender queue) is the top-level `federation` package, which this one uses.
Beside `sync/`, not under the client-facing packages: may use `rooms`, `ephemeral`, `e2ee`,
`streams`, `auth`, `clock`; none of them imports it.
"""
