"""Identity servers: inviting by e-mail address (or another third-party identifier) into rooms.

May import rooms/ (membership, events, room state, creation) and the layers below it; talks to
identity servers over HTTPS (aiohttp). Nothing below imports it.
"""
