"""A real Synapse as a federation peer for the tests.

Synapse (pinned `SYNAPSE_VERSION`, from PyPI) lives in its own virtualenv under the user's
cache directory, outside the project's environment: it brings Twisted and its own pins, and
the tests only ever talk to it over HTTPS, as a separate process. `.ci/run` installs it with
`python -m tests.federation.synapse install`; a test run that finds none installs it itself
(once, about 25 s) and skips the Synapse tests if that fails (fails them instead when
CHATGO_REQUIRE_SYNAPSE=1, as CI sets).

`SynapseServer` writes a config for server name `localhost:<port>`: one TLS listener serving
client + federation (+ keys), the test CA's `localhost` certificate, SQLite, relaxed rate
limits, registration only through the shared secret (admin API), loopback peers allowed and
their certificates checked against the test CA. Its log goes to `homeserver.log` in its
directory; `log_tail()` returns the end of it for failure messages.

`MatrixClient` is a small client-server API client (aiohttp) used for both servers.

    python -m tests.federation.synapse install   # create the venv (idempotent), print its python
    python -m tests.federation.synapse python    # print the python that would be used, if any
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import os
import secrets
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml
from signedjson.key import generate_signing_key, get_verify_key, write_signing_keys

SYNAPSE_VERSION = "1.163.2"
START_TIMEOUT_S = 90.0


_names = itertools.count(1)


def unique_name(prefix: str) -> str:
    """`prefix-N`, unique in this test process (for users and aliases on a shared server)."""
    return f"{prefix}-{next(_names)}"


# --- installation ---------------------------------------------------------------------------

def venv_dir() -> Path:
    """Where the Synapse virtualenv lives: $CHATGO_SYNAPSE_VENV, else the user's cache."""
    if explicit := os.environ.get("CHATGO_SYNAPSE_VENV"):
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "chatgo" / f"synapse-{SYNAPSE_VERSION}"


def synapse_python() -> Path | None:
    """The interpreter that runs Synapse, or None when Synapse is not installed."""
    if explicit := os.environ.get("CHATGO_SYNAPSE_PYTHON"):
        return Path(explicit)
    python = venv_dir() / "bin" / "python"
    return python if (venv_dir() / ".installed").exists() and python.exists() else None


def install() -> Path:
    """Create the virtualenv and install Synapse into it (nothing to do when it is there)."""
    directory = venv_dir()
    python = directory / "bin" / "python"
    if (directory / ".installed").exists() and python.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(directory)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    f"matrix-synapse=={SYNAPSE_VERSION}"], check=True)
    subprocess.run([str(python), "-c", "import synapse.app.homeserver"], check=True)
    (directory / ".installed").write_text(SYNAPSE_VERSION + "\n")
    return python


# --- the server -----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rate(per_second: float = 1000, burst: int = 10000) -> dict[str, Any]:
    return {"per_second": per_second, "burst_count": burst}


def lifted_rate_limits() -> dict[str, Any]:
    """Synapse's client-side `rc_*` limits, raised out of a test's or a benchmark's way."""
    return {
        "rc_message": _rate(), "rc_registration": _rate(), "rc_admin_redaction": _rate(),
        "rc_login": {"address": _rate(), "account": _rate(), "failed_attempts": _rate()},
        "rc_joins": {"local": _rate(), "remote": _rate()}, "rc_joins_per_room": _rate(),
        "rc_invites": {"per_room": _rate(), "per_user": _rate(), "per_issuer": _rate()},
        "rc_third_party_invite": _rate(), "rc_key_requests": _rate(), "rc_3pid_validation": _rate(),
        "rc_media_create": _rate(), "rc_presence": {"per_user": _rate()}, "rc_room_creation": _rate(),
        "rc_delayed_event_mgmt": _rate(), "rc_reports": _rate(), "rc_user_directory": _rate(),
        "rc_profile": _rate(),
    }


def synapse_config(directory: Path, port: int, cert: Path, key: Path, ca_cert: Path,
                   shared_secret: str) -> dict[str, Any]:
    """The homeserver.yaml of a test Synapse (see the module docstring)."""
    loopback = ["127.0.0.0/8", "::1/128"]
    return {
        "server_name": f"localhost:{port}",
        "public_baseurl": f"https://localhost:{port}/",
        "pid_file": str(directory / "homeserver.pid"),
        "listeners": [{
            "port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": True, "x_forwarded": False,
            "resources": [{"names": ["client", "federation", "keys"], "compress": False}],
        }],
        "tls_certificate_path": str(cert),
        "tls_private_key_path": str(key),
        # Outbound federation checks peers' certificates against the test CA, as ChatGO does.
        "federation_verify_certificates": True,
        "federation_custom_ca_list": [str(ca_cert)],
        "ip_range_whitelist": loopback,
        "database": {"name": "sqlite3", "args": {"database": str(directory / "homeserver.db")}},
        "log_config": str(directory / "log.yaml"),
        "media_store_path": str(directory / "media"),
        "signing_key_path": str(directory / "signing.key"),
        "report_stats": False,
        "registration_shared_secret": shared_secret,
        "enable_registration": False,
        "macaroon_secret_key": secrets.token_hex(16),
        "form_secret": secrets.token_hex(16),
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "presence": {"enabled": True},
        "allow_public_rooms_over_federation": True,
        "serve_server_wellknown": False,
        "enable_metrics": False,
        "url_preview_enabled": False,
        "user_directory": {"enabled": True, "search_all_users": True},
        **lifted_rate_limits(),
        "rc_federation": {"window_size": 1000, "sleep_limit": 10000, "sleep_delay": 1,
                          "reject_limit": 10000, "concurrent": 1000},
        "federation_rr_transactions_per_room_per_second": 1000,
    }


def log_config(log_file: Path, level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {"precise": {"format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                                             "%(request)s - %(message)s"}},
        "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter", "request": ""}},
        "handlers": {"file": {"class": "logging.FileHandler", "formatter": "precise", "filters": ["context"],
                              "filename": str(log_file), "encoding": "utf8"}},
        "loggers": {"synapse.storage.SQL": {"level": "INFO"},
                    "twisted": {"level": "WARNING"}},
        "root": {"level": level, "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


def _die_with_parent() -> None:
    """In the child before exec: Linux sends it SIGTERM when the test process dies, so a killed
    test run leaves no Synapse behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class SynapseServer:
    """One Synapse process on loopback, named `localhost:<port>`."""

    def __init__(self, directory: Path, tls_files: Any, python: Path) -> None:
        self.directory = directory
        self.tls_files = tls_files
        self.python = python
        self.port = _free_port()
        self.name = f"localhost:{self.port}"
        self.url = f"https://localhost:{self.port}"
        self.shared_secret = secrets.token_hex(16)
        self.signing_key = generate_signing_key("a_test")
        self.verify_key = get_verify_key(self.signing_key)
        self.log_path = directory / "homeserver.log"
        self.process: subprocess.Popen | None = None
        self.startup_seconds = 0.0
        self._log_file: Any = None

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.tls_files.ca_cert))

    def start(self) -> SynapseServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "media").mkdir(exist_ok=True)
        with open(self.directory / "signing.key", "w") as stream:
            write_signing_keys(stream, [self.signing_key])
        level = os.environ.get("CHATGO_SYNAPSE_LOG_LEVEL", "INFO")
        (self.directory / "log.yaml").write_text(yaml.safe_dump(log_config(self.log_path, level)))
        config = synapse_config(self.directory, self.port, self.tls_files.cert, self.tls_files.key,
                                self.tls_files.ca_cert, self.shared_secret)
        (self.directory / "homeserver.yaml").write_text(yaml.safe_dump(config))
        self._log_file = open(self.directory / "stdout.log", "wb")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [str(self.python), "-m", "synapse.app.homeserver", "-c", str(self.directory / "homeserver.yaml")],
            cwd=self.directory, stdout=self._log_file, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            env={**os.environ, "SYNAPSE_ASYNC_IO_REACTOR": "0", "PYTHONDONTWRITEBYTECODE": "1"},
        )
        try:
            self._wait_until_up(started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_until_up(self, started: float) -> None:
        context = self.ssl_context()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Synapse exited with {self.process.returncode} while starting:\n"
                                   + self.log_tail())
            try:
                with urllib.request.urlopen(self.url + "/_matrix/client/versions", context=context,
                                            timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() - started > START_TIMEOUT_S:
                raise RuntimeError(f"Synapse did not answer within {START_TIMEOUT_S}s:\n" + self.log_tail())
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 80, offset: int = 0) -> str:
        """The end of Synapse's output and of its log after byte `offset` (without the start-up
        chatter once it is up)."""
        parts = []
        stdout = self.directory / "stdout.log"
        if stdout.exists() and stdout.stat().st_size:
            parts.append("--- stdout ---\n" + "\n".join(stdout.read_text(errors="replace").splitlines()[-lines:]))
        if self.log_path.exists():
            text = self.log_lines_since(offset)
            up = next((i for i, line in enumerate(text) if "Synapse now listening" in line), -1)
            text = text[up + 1:] or text
            parts.append(f"--- {self.log_path} (last {lines} lines) ---\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)

    def log_lines_since(self, offset: int) -> list[str]:
        with open(self.log_path, "rb") as stream:
            stream.seek(offset)
            return stream.read().decode(errors="replace").splitlines()

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    async def register(self, localpart: str, password: str = "s3cret-pass", *, admin: bool = False,
                       displayname: str | None = None) -> MatrixClient:
        """A new user through the shared-secret admin API, logged in. The localpart gets a
        unique suffix (`alice` -> `@alice-7:localhost:PORT`): the server may be shared."""
        localpart = unique_name(localpart)
        async with aiohttp.ClientSession() as session:
            url = self.url + "/_synapse/admin/v1/register"
            async with session.get(url, ssl=self.ssl_context()) as resp:
                nonce = (await resp.json())["nonce"]
            mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
            mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(),
                                     b"admin" if admin else b"notadmin"]))
            body = {"nonce": nonce, "username": localpart, "password": password, "admin": admin,
                    "mac": mac.hexdigest()}
            if displayname is not None:
                body["displayname"] = displayname
            async with session.post(url, json=body, ssl=self.ssl_context()) as resp:
                data = await resp.json()
                assert resp.status == 200, data
        return MatrixClient(self.url, self.ssl_context(), data["access_token"], data["user_id"])


# --- a client for either server -------------------------------------------------------------

class MatrixClient:
    """Just enough of the client-server API for the interop scenarios."""

    def __init__(self, base_url: str, ssl_context: ssl.SSLContext, token: str, user_id: str) -> None:
        self.base_url = base_url
        self.ssl_context = ssl_context
        self.token = token
        self.user_id = user_id
        self.next_batch: str | None = None
        self.responses: list[dict[str, Any]] = []  # every /sync response so far, oldest first
        self._txn = 0

    @classmethod
    async def login(cls, base_url: str, ssl_context: ssl.SSLContext, user_id: str,
                    password: str = "s3cret-pass") -> MatrixClient:
        async with aiohttp.ClientSession() as session:
            async with session.post(base_url + "/_matrix/client/v3/login", ssl=ssl_context, json={
                    "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
                    "password": password}) as resp:
                data = await resp.json()
                assert resp.status == 200, data
        return cls(base_url, ssl_context, data["access_token"], data["user_id"])

    @classmethod
    async def chatgo_user(cls, server: Any, ssl_context: ssl.SSLContext, localpart: str,
                          password: str = "s3cret-pass") -> MatrixClient:
        """A new user on an in-process ChatGO server (tests/federation/conftest.py), logged in."""
        user_id = await server.services.accounts.create_user(localpart, password)
        return await cls.login(server.url, ssl_context, user_id, password)

    async def request(self, method: str, path: str, body: Any = None, *, query: Any = None,
                      timeout_s: float = 30) -> tuple[int, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
            async with session.request(method, self.base_url + path, json=body, params=query,
                                       headers={"Authorization": f"Bearer {self.token}"},
                                       ssl=self.ssl_context) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = await resp.text()
                return resp.status, data

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """A request that must succeed (200); returns the body."""
        status, data = await self.request(method, path, body, **kw)
        assert status == 200, f"{method} {self.base_url}{path} -> {status} {data}"
        return data

    # rooms
    async def create_room(self, **body: Any) -> str:
        return (await self.call("POST", "/_matrix/client/v3/createRoom", body))["room_id"]

    async def join(self, room: str, via: Iterable[str] = (), *, param: str = "via") -> str:
        """POST /join/{roomIdOrAlias}, naming the servers to join through in `param`
        (`via`, spec v1.12, or the older `server_name`)."""
        via = list(via)
        async with aiohttp.ClientSession() as session:
            async with session.post(self.base_url + "/_matrix/client/v3/join/" + quote(room, safe=""),
                                    json={}, params=[(param, server) for server in via],
                                    headers={"Authorization": f"Bearer {self.token}"},
                                    ssl=self.ssl_context, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                data = await resp.json(content_type=None)
                assert resp.status == 200, f"join {room} via {via} on {self.base_url} -> {resp.status} {data}"
                return data["room_id"]

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/invite", {"user_id": user_id},
                        timeout_s=60)

    async def leave(self, room_id: str) -> None:
        await self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/leave", {}, timeout_s=60)

    async def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message") -> str:
        self._txn += 1
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/send/{event_type}/t{self._txn}{secrets.token_hex(4)}"
        return (await self.call("PUT", path, content))["event_id"]

    async def send_text(self, room_id: str, body: str) -> str:
        return await self.send(room_id, {"msgtype": "m.text", "body": body})

    async def typing(self, room_id: str, typing: bool = True, timeout_ms: int = 30000) -> None:
        body: dict[str, Any] = {"typing": typing}
        if typing:
            body["timeout"] = timeout_ms
        await self.call("PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/typing/{quote(self.user_id)}", body)

    async def receipt(self, room_id: str, event_id: str, receipt_type: str = "m.read") -> None:
        await self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/receipt/{receipt_type}/"
                                f"{quote(event_id)}", {})

    async def kick(self, room_id: str, user_id: str, reason: str = "") -> None:
        await self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/kick",
                        {"user_id": user_id, "reason": reason}, timeout_s=60)

    async def ban(self, room_id: str, user_id: str, reason: str = "") -> None:
        await self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/ban",
                        {"user_id": user_id, "reason": reason}, timeout_s=60)

    async def knock(self, room: str, via: Iterable[str] = (), reason: str = "") -> str:
        data = await self.call("POST", "/_matrix/client/v3/knock/" + quote(room, safe=""), {"reason": reason},
                               query=[("via", server) for server in via], timeout_s=60)
        return data["room_id"]

    async def redact(self, room_id: str, event_id: str, reason: str = "") -> str:
        self._txn += 1
        path = (f"/_matrix/client/v3/rooms/{quote(room_id)}/redact/{quote(event_id)}/"
                f"r{self._txn}{secrets.token_hex(4)}")
        return (await self.call("PUT", path, {"reason": reason}))["event_id"]

    async def set_state(self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = "") -> str:
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{event_type}/{quote(state_key)}"
        return (await self.call("PUT", path, content))["event_id"]

    async def messages(self, room_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The room's timeline, newest first, through /messages (which may backfill)."""
        data = await self.call("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages",
                               query={"dir": "b", "limit": str(limit)}, timeout_s=60)
        return data["chunk"]

    async def create_alias(self, alias: str, room_id: str) -> None:
        await self.call("PUT", f"/_matrix/client/v3/directory/room/{quote(alias)}", {"room_id": room_id})

    async def set_displayname(self, name: str) -> None:
        await self.call("PUT", f"/_matrix/client/v3/profile/{quote(self.user_id)}/displayname",
                        {"displayname": name})

    # sync
    # A timeline long enough that an incremental sync is never `limited` in these scenarios
    # (Synapse's default is 10 events), so a finder sees every event.
    SYNC_FILTER = '{"room": {"timeline": {"limit": 100}}}'

    async def sync(self, timeout_ms: int = 0) -> dict[str, Any]:
        query = {"timeout": str(timeout_ms), "filter": self.SYNC_FILTER}
        if self.next_batch:
            query["since"] = self.next_batch
        data = await self.call("GET", "/_matrix/client/v3/sync", query=query, timeout_s=timeout_ms / 1000 + 30)
        self.next_batch = data["next_batch"]
        self.responses.append(data)
        return data

    async def sync_until(self, find: Callable[[dict[str, Any]], Any], timeout_s: float = 20,
                         what: str = "", *, seen: bool = True) -> Any:
        """Long-poll /sync until `find(response)` returns something truthy; return it.

        With `seen` (the default) the responses of earlier syncs are searched first, so the
        order in which a test waits for things does not matter; pass seen=False for state
        that changes back and forth (typing)."""
        if seen:
            for response in self.responses:
                if found := find(response):
                    return found
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.user_id} did not see {what or find} within {timeout_s}s")
            found = find(await self.sync(timeout_ms=int(min(left, 5) * 1000)))
            if found:
                return found


# Finders over a /sync response (for MatrixClient.sync_until).

def timeline_event(room_id: str, match: Callable[[dict[str, Any]], bool]) -> Callable[[dict], Any]:
    def find(response: dict[str, Any]) -> Any:
        room = response.get("rooms", {}).get("join", {}).get(room_id, {})
        events = room.get("timeline", {}).get("events", []) + room.get("state", {}).get("events", [])
        return next((event for event in events if match(event)), None)
    return find


def knocked_on(room_id: str) -> Callable[[dict], Any]:
    return lambda response: response.get("rooms", {}).get("knock", {}).get(room_id)


def invited_to(room_id: str) -> Callable[[dict], Any]:
    return lambda response: response.get("rooms", {}).get("invite", {}).get(room_id)


def left(room_id: str) -> Callable[[dict], Any]:
    return lambda response: response.get("rooms", {}).get("leave", {}).get(room_id)


def ephemeral(room_id: str, match: Callable[[dict[str, Any]], bool]) -> Callable[[dict], Any]:
    def find(response: dict[str, Any]) -> Any:
        room = response.get("rooms", {}).get("join", {}).get(room_id, {})
        return next((event for event in room.get("ephemeral", {}).get("events", []) if match(event)), None)
    return find


def membership_of(user_id: str, membership: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: (event.get("type") == "m.room.member" and event.get("state_key") == user_id
                          and event.get("content", {}).get("membership") == membership)


def text_message(body: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("type") == "m.room.message" and event.get("content", {}).get("body") == body


async def wait_for(check: Callable[[], Any], timeout_s: float = 20, interval_s: float = 0.2, what: str = "") -> Any:
    """Poll an async `check()` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or check}")
        await asyncio.sleep(interval_s)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "python"
    if command == "install":
        print(install())
        return 0
    if command == "python":
        python = synapse_python()
        print(python or "")
        return 0 if python else 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
