"""Sync: building what a client long-polls for — /sync (`sync`, `rooms`), sliding sync
(`sliding`, with its request parsing, room builder and extensions) and filters.

Reads every client-facing domain. May use: `rooms`, `ephemeral`, `e2ee`, `push`, `accounts`,
`streams`, `auth`, `clock`. Nothing imports sync but the wiring.
"""
