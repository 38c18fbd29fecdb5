"""Rooms: the event graph on this server and the use cases of a room's life.

The write path (`events`, with the per-room queues of group commit in `send_queue`), the cached room state (`state`), creating rooms (`creation`),
membership, sending (`messaging`), reading history (`timeline`, `relations`, `search`,
`event_format`), the directory, retention, room upgrades (`upgrades`), and the wake-ups of
a committed event.
Joins through another server come in through `membership.RemoteMembership`, which
`services/federation/` implements: rooms/ never imports federation/.
May use: `streams`, `auth`, `clock`. Everything that builds on rooms sits above it.
"""
