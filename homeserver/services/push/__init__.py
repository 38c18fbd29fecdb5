"""Push: push rules evaluated on every committed event (`rules`), pushers and their delivery
to push gateways (`pushers`), and the notifications list and unread counts (`notifications`).

May use: `rooms`, `auth`, `clock`.
"""
