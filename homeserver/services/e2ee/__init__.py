"""End-to-end encryption: device and one-time keys, cross-signing, keys of other servers'
users (`remote_keys`, and the cache of their device lists, `remote_devices`), and server-side key
backup.

May use: `accounts` (UIA for cross-signing uploads), `ephemeral` (device-list changes and
to-device), `streams`, `auth`, `clock`.
"""
