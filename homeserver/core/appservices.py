"""Application services: the registration record, its namespaces, and whom it concerns.

Spec: "Application Service API", Registration. A registration is the YAML file a bridge
generates (`id`, `url`, `as_token`, `hs_token`, `sender_localpart`, `namespaces` of users,
aliases and rooms, each a list of `{exclusive, regex}`), read the way Synapse reads it:
regexes match from the start of the ID (`re.match`), `url` may be null (the appservice then
gets no traffic), `rate_limited` defaults to true (the sender is never limited), and the
unstable flags bridges set are honoured (`de.sorunome.msc2409.push_ephemeral`,
`org.matrix.msc3202`, `io.element.msc4190`).

`parse_registration(text, source, server_name)` turns a file's text into an `AppService` or
raises `RegistrationError` naming the file and the line; `AppServiceRegistry` holds them all
(unique `id`, `as_token` and `hs_token`) and answers the questions the rest of the server asks:
whose token is this, who claims this user ID or alias exclusively.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

NAMESPACE_KINDS = ("users", "aliases", "rooms")


class RegistrationError(ValueError):
    """A registration file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Namespace:
    exclusive: bool
    regex: re.Pattern[str]

    def matches(self, value: str) -> bool:
        return self.regex.match(value) is not None


@dataclass(frozen=True, slots=True)
class AppService:
    id: str
    url: str | None             # without a trailing slash; None: no transactions, no queries
    as_token: str               # the appservice's token for our client API
    hs_token: str               # our token for its API
    sender: str                 # @sender_localpart:server_name
    users: tuple[Namespace, ...]
    aliases: tuple[Namespace, ...]
    rooms: tuple[Namespace, ...]
    rate_limited: bool = True   # requests as its users (not its sender) are rate-limited
    protocols: tuple[str, ...] = ()
    receive_ephemeral: bool = False   # `receive_ephemeral` (spec v1.13): the `ephemeral` key
    unstable_ephemeral: bool = False  # `de.sorunome.msc2409.push_ephemeral`: the MSC2409 key
    msc3202: bool = False       # device lists and one-time-key counts in transactions
    msc4190: bool = False       # device management without /login (MSC4190)
    source: str = ""            # the file it came from

    @property
    def server_name(self) -> str:
        return self.sender.split(":", 1)[1]

    @property
    def wants_ephemeral(self) -> bool:
        """Typing, receipts, presence and to-device messages go into its transactions (MSC2409,
        MSC4203: Synapse sends to-device messages to the appservices that take ephemeral data)."""
        return self.receive_ephemeral or self.unstable_ephemeral

    # --- users ------------------------------------------------------------------------------

    def is_user_in_namespace(self, user_id: str) -> bool:
        """A local user ID its user namespaces match (spec: only local users can concern it)."""
        return _is_local(user_id, self.server_name) and any(ns.matches(user_id) for ns in self.users)

    def is_interested_in_user(self, user_id: str) -> bool:
        """Its sender, or a local user in its namespaces: the users it may act as."""
        return user_id == self.sender or self.is_user_in_namespace(user_id)

    def is_exclusive_user(self, user_id: str) -> bool:
        return user_id == self.sender or (
            _is_local(user_id, self.server_name) and any(ns.exclusive and ns.matches(user_id) for ns in self.users))

    # --- aliases and rooms ------------------------------------------------------------------

    def is_alias_in_namespace(self, alias: str) -> bool:
        return any(ns.matches(alias) for ns in self.aliases)

    def is_exclusive_alias(self, alias: str) -> bool:
        return any(ns.exclusive and ns.matches(alias) for ns in self.aliases)

    def is_room_in_namespace(self, room_id: str) -> bool:
        return any(ns.matches(room_id) for ns in self.rooms)

    def is_interested_in_event(self, sender: str, event_type: str, state_key: str | None, room_id: str) -> bool:
        """What the event itself tells: its sender, a membership's target, or its room ID is
        ours. (The room's aliases and members are the caller's to check.)"""
        return (self.is_interested_in_user(sender)
                or (event_type == "m.room.member" and state_key is not None and self.is_interested_in_user(state_key))
                or self.is_room_in_namespace(room_id))

    def __repr__(self) -> str:  # never print the tokens
        return f"AppService(id={self.id!r}, url={self.url!r}, sender={self.sender!r}, source={self.source!r})"


def _is_local(user_id: str, server_name: str) -> bool:
    return user_id.startswith("@") and user_id.partition(":")[2] == server_name


class AppServiceRegistry:
    """Every registered appservice, looked up by token or ID, and the exclusivity rules."""

    def __init__(self, services: Iterable[AppService] = ()) -> None:
        self.services: tuple[AppService, ...] = tuple(services)
        self._by_token = {s.as_token: s for s in self.services}
        self._by_id = {s.id: s for s in self.services}
        self._senders = {s.sender: s for s in self.services}

    def __bool__(self) -> bool:
        return bool(self.services)

    def by_token(self, token: str) -> AppService | None:
        return self._by_token.get(token)

    def by_id(self, service_id: str) -> AppService | None:
        return self._by_id.get(service_id)

    def by_sender(self, user_id: str) -> AppService | None:
        return self._senders.get(user_id)

    def exclusive_owner_of_user(self, user_id: str, *, besides: str | None = None) -> AppService | None:
        """An appservice other than `besides` that claims the user ID exclusively (spec:
        M_EXCLUSIVE for everybody else who would register it)."""
        for service in self.services:
            if service.id != besides and service.is_exclusive_user(user_id):
                return service
        return None

    def may_claim_alias(self, alias: str, user_id: str) -> bool:
        """Whether a user (not acting as an appservice) may create or delete this alias: only
        when no appservice holds it exclusively, or the user is that appservice's sender (as
        Synapse's can_modify_alias)."""
        for service in self.services:
            if not service.is_alias_in_namespace(alias):
                continue
            if user_id == service.sender:
                return True
            if service.is_exclusive_alias(alias):
                return False
        return True

    def exempt_from_rate_limits(self, user_id: str) -> bool:
        """Whether a user's actions skip the rate limits: an appservice's sender, or a user of a
        namespace of an appservice registered with `rate_limited: false` (for a limiter keyed by
        user ID; requests made with the as_token are judged by `Requester.app_service_id`)."""
        return any(user_id == s.sender or (not s.rate_limited and s.is_user_in_namespace(user_id))
                   for s in self.services)

    def interested_in_user(self, user_id: str) -> list[AppService]:
        return [s for s in self.services if s.is_interested_in_user(user_id)]

    def with_alias(self, alias: str) -> list[AppService]:
        return [s for s in self.services if s.is_alias_in_namespace(alias)]

    def for_protocol(self, protocol: str) -> list[AppService]:
        return [s for s in self.services if protocol in s.protocols]


# --- parsing --------------------------------------------------------------------------------

def parse_registration(text: str, source: str, server_name: str) -> AppService:
    """One registration file's text as an AppService; RegistrationError names `source` and
    the line of the problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{source}, line {mark.line + 1}" if mark is not None else source
        raise RegistrationError(f"{where}: not valid YAML: {err.problem or err}") from None
    except yaml.YAMLError as err:
        raise RegistrationError(f"{source}: not valid YAML: {err}") from None
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise RegistrationError(f"{source}: a registration must be a mapping of keys to values")
    at = _Lines(source, root)

    for key in ("id", "as_token", "hs_token", "sender_localpart"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise at.error((key,), f"'{key}' is required and must be a non-empty string")
    # 'url' must be there: a string, or null for an appservice that takes no traffic (as Synapse,
    # so that a forgotten url does not silently turn transactions off).
    if "url" not in data:
        raise at.error((), "'url' is required (a URL, or null for no traffic)")
    url = data["url"]
    if url is not None:
        url = _check_url(url, at)
    service_id = data["id"]
    if "|" in service_id:  # Synapse uses it as a separator in third-party instance IDs
        raise at.error(("id",), "'id' may not contain '|'")
    localpart = data["sender_localpart"]
    if urllib.parse.quote(localpart) != localpart:
        raise at.error(("sender_localpart",), "'sender_localpart' may only hold characters that need no URL-encoding")
    namespaces = data.get("namespaces")
    if not isinstance(namespaces, dict):
        raise at.error(("namespaces",), "'namespaces' is required and must be a mapping of users, aliases, rooms")
    parsed = {kind: _namespaces(namespaces.get(kind), kind, at) for kind in NAMESPACE_KINDS}
    protocols = data.get("protocols")
    if protocols is None:
        protocols = []
    if not isinstance(protocols, list) or not all(isinstance(p, str) for p in protocols):
        raise at.error(("protocols",), "'protocols' must be a list of strings")
    flags = {name: _flag(data, key, at, default)
             for name, key, default in (("rate_limited", "rate_limited", True),
                                        ("receive_ephemeral", "receive_ephemeral", False),
                                        ("unstable_ephemeral", "de.sorunome.msc2409.push_ephemeral", False),
                                        ("msc3202", "org.matrix.msc3202", False),
                                        ("msc4190", "io.element.msc4190", False))}
    return AppService(
        id=service_id, url=url, as_token=data["as_token"], hs_token=data["hs_token"],
        sender=f"@{localpart}:{server_name}", users=parsed["users"], aliases=parsed["aliases"],
        rooms=parsed["rooms"], protocols=tuple(protocols), source=source, **flags,
    )


def check_unique(services: Iterable[AppService]) -> None:
    """Spec: `id` and `as_token` MUST be unique per appservice (they identify it); `hs_token`
    too, so that an appservice can tell our requests from another homeserver's twin."""
    services = list(services)
    seen: dict[tuple[str, str], AppService] = {}
    for service in services:
        for what, value in (("id", service.id), ("as_token", service.as_token), ("hs_token", service.hs_token)):
            other = seen.get((what, value))
            if other is not None:
                raise RegistrationError(
                    f"{service.source}: the same {what} as {other.source} (each appservice needs its own)")
            seen[(what, value)] = service
    # An hs_token that is another appservice's as_token would let the one act as the other.
    for service in services:
        other = seen.get(("as_token", service.hs_token))
        if other is not None and other is not service:
            raise RegistrationError(f"{service.source}: its hs_token is the as_token of {other.source}")


def _check_url(url: Any, at: _Lines) -> str:
    if not isinstance(url, str):
        raise at.error(("url",), "'url' must be a string or null")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise at.error(("url",), f"'url' must be an http:// or https:// URL with a host, not {url!r}")
    try:
        parsed.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise at.error(("url",), f"'url' has a bad port: {url!r}") from None
    return url.rstrip("/")


def _namespaces(entries: Any, kind: str, at: _Lines) -> tuple[Namespace, ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise at.error(("namespaces", kind), f"'namespaces.{kind}' must be a list")
    out = []
    for i, entry in enumerate(entries):
        where = ("namespaces", kind, i)
        if not isinstance(entry, dict):
            raise at.error(where, f"'namespaces.{kind}[{i}]' must be a mapping with 'regex' and 'exclusive'")
        regex, exclusive = entry.get("regex"), entry.get("exclusive")
        if not isinstance(regex, str):
            raise at.error(where, f"'namespaces.{kind}[{i}].regex' is required and must be a string")
        if not isinstance(exclusive, bool):
            raise at.error(where, f"'namespaces.{kind}[{i}].exclusive' is required and must be true or false")
        try:
            compiled = re.compile(regex)
        except re.error as err:
            raise at.error((*where, "regex"), f"'namespaces.{kind}[{i}].regex' is not a valid regular expression "
                                               f"({err}): {regex!r}") from None
        out.append(Namespace(exclusive, compiled))
    return tuple(out)


def _flag(data: Mapping[str, Any], key: str, at: _Lines, default: bool) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise at.error((key,), f"'{key}' must be true or false")
    return value


class _Lines:
    """Line numbers of a YAML document's values, for error messages."""

    def __init__(self, source: str, root: yaml.Node) -> None:
        self._source = source
        self._root = root

    def error(self, path: tuple[str | int, ...], message: str) -> RegistrationError:
        node = self._root
        for step in path:
            child = _child(node, step)
            if child is None:
                break
            node = child
        return RegistrationError(f"{self._source}, line {node.start_mark.line + 1}: {message}")


def _child(node: yaml.Node, step: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(step, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == step:
                return value
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
        return node.value[step]
    return None
