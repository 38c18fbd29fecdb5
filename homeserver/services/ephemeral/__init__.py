"""Ephemeral and per-user data: typing, receipts, presence, account data, to-device messages
and device-list changes — what /sync delivers besides room events.

May use: `rooms`, `streams`, `auth`, `clock`.
"""
