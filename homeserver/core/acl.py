"""Server ACLs: may a server take part in a room, by the room's m.room.server_acl content?

Spec: m.room.server_acl (client-server API, "Server Access Control Lists (ACLs) for rooms")
and the server-server API's "Server Access Control Lists (ACLs)" for where it applies.
Content that does not follow the schema is read the way Synapse reads it, field by field:
a field of the wrong type takes its default, and non-string entries of `allow`/`deny`
match nothing (so a broken `allow` denies everyone, as the schema warns).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from homeserver.core.push_rules import glob_matches


def server_allowed(acl_content: Mapping[str, Any] | None, server_name: str) -> bool:
    """Whether `server_name` passes the ACL `acl_content` (the content of the room's current
    m.room.server_acl event; None when the room has none)."""
    # 1. No m.room.server_acl event in the room state: allow.
    if acl_content is None:
        return True
    # "the suspect server's port number must not be considered": match on the host only.
    host = _host(server_name)
    # 2. An IP literal, with allow_ip_literals present and false: deny. ("Defaults to true
    # if missing or otherwise not a boolean.")
    allow_ip_literals = acl_content.get("allow_ip_literals", True)
    if not isinstance(allow_ip_literals, bool):
        allow_ip_literals = True
    if not allow_ip_literals and _is_ip_literal(host):
        return False
    # 3. Matches an entry of `deny`: deny.
    if any(glob_matches(p, host) for p in _patterns(acl_content.get("deny"))):
        return False
    # 4. Matches an entry of `allow`: allow. 5. Otherwise deny (`allow` defaults to []).
    return any(glob_matches(p, host) for p in _patterns(acl_content.get("allow")))


def _patterns(value: Any) -> list[str]:
    """The glob patterns of `allow`/`deny`: a non-list is the empty list, non-strings are skipped."""
    if not isinstance(value, (list, tuple)):
        return []
    return [p for p in value if isinstance(p, str)]


def _host(server_name: str) -> str:
    """The server name without its port: `[::1]:8448` -> `[::1]`, `example.org:80` -> `example.org`."""
    if server_name.startswith("["):
        end = server_name.find("]")
        return server_name[:end + 1] if end != -1 else server_name
    return server_name.rsplit(":", 1)[0] if server_name.count(":") == 1 else server_name


def _is_ip_literal(host: str) -> bool:
    # IPv6 literals are bracketed in server names; an unbracketed one (not a valid server
    # name, but a peer may claim it) counts as a literal too.
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return host.startswith("[")
    return True
