"""Sync: building what a client long-polls for — /sync (`sync`, `rooms`), sliding sync
(`sliding`, with its request parsing, room builder and extensions), filters, and the
deprecated event stream and snapshots (`legacy_stream`: GET /events, peeking;
`legacy_initial_sync`: /initialSync and room initialSync).

Reads every client-facing domain. May use: `rooms`, `ephemeral`, `e2ee`, `push`, `accounts`,
`streams`, `auth`, `clock`. Nothing imports sync but the wiring.
"""
