"""Streams: the positions every change a client must see is numbered by, and the wake-ups.

`tracker` (positions that become visible in order), `notifier` (waiting long-polls parked per
user) and `aux` (the per-user stream shared by account data, receipts, to-device, device lists
and presence). The plumbing under every domain that writes what /sync reads.
May use: `clock`. Never another services package.
"""
