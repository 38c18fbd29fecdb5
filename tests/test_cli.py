"""The `chatgo` command end to end: generate-config, run (embedded database and URL), register-user."""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
import yaml

from storage.embedded import postgres_processes

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chatgo(*args, env=None, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "homeserver", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd or REPO, timeout=timeout)


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                import json

                return json.loads(resp.read())
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout}s")


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def generate(tmp_path: Path, *extra: str) -> tuple[Path, int, int]:
    client_port, federation_port = free_port(), free_port()
    result = chatgo("generate-config", "--server-name", "cli.test", "--data-dir", str(tmp_path / "data"),
                    "--client-port", str(client_port), "--federation-port", str(federation_port), *extra)
    assert result.returncode == 0, result.stderr
    return tmp_path / "data" / "homeserver.yaml", client_port, federation_port


def test_generate_config_writes_config_and_signing_key(tmp_path):
    config_path, client_port, _ = generate(tmp_path, "--enable-registration")
    raw = yaml.safe_load(config_path.read_text())
    assert raw["server_name"] == "cli.test"
    assert raw["registration"]["enabled"] is True
    # A fresh registration shared secret, in a file only its owner reads.
    assert len(raw["registration"]["shared_secret"]) >= 40
    assert config_path.stat().st_mode & 0o077 == 0
    assert raw["listeners"][0]["port"] == client_port
    key = (tmp_path / "data" / "signing.key").read_text().split()
    assert key[0] == "ed25519" and key[1].startswith("a_") and len(key[2]) == 43
    # The federation listener's self-signed certificate too: `chatgo run` need not make one.
    assert (tmp_path / "data" / "tls.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert (tmp_path / "data" / "tls.key").exists()
    # It refuses to overwrite.
    again = chatgo("generate-config", "--server-name", "x", "--data-dir", str(tmp_path / "data"))
    assert again.returncode == 1 and "already exists" in again.stderr



def test_generate_config_takes_the_public_baseurl(tmp_path):
    config_path, _, _ = generate(tmp_path, "--public-baseurl", "https://matrix.cli.test/")
    from homeserver.config_loading import load_config

    config = load_config(config_path, env={})
    assert config.public_baseurl == "https://matrix.cli.test/"
    assert config.client_base_url == "https://matrix.cli.test/"


def test_generate_signing_key_for_a_secret(tmp_path):
    from signedjson.key import get_verify_key

    from homeserver.app import load_signing_key

    printed = chatgo("generate-signing-key")
    assert printed.returncode == 0, printed.stderr
    (tmp_path / "printed.key").write_text(printed.stdout)
    key = load_signing_key(tmp_path / "printed.key")
    assert key.alg == "ed25519" and key.version.startswith("a_")
    assert get_verify_key(key).encode()  # a usable ed25519 key

    path = tmp_path / "signing.key"
    assert chatgo("generate-signing-key", "-o", str(path)).returncode == 0
    assert path.stat().st_mode & 0o077 == 0
    first = path.read_text()
    assert load_signing_key(path).version != key.version  # a new key each time
    again = chatgo("generate-signing-key", "-o", str(path))
    assert again.returncode == 1 and "already exists" in again.stderr
    assert path.read_text() == first  # never overwritten

def run_server(config_path: Path, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "homeserver", "run", "-c", str(config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})}, cwd=REPO)


def test_run_with_embedded_database_serves_and_stops_cleanly(own_tmp_path):
    config_path, client_port, federation_port = generate(own_tmp_path)
    proc = run_server(config_path)
    try:
        versions = wait_for(f"http://127.0.0.1:{client_port}/_matrix/client/versions", proc)
        assert "v1.19" in versions["versions"]
        # The federation listener speaks TLS with the generated self-signed certificate.
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", federation_port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="cli.test") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert (own_tmp_path / "data" / "tls.crt").exists()
        # With its certificate made by generate-config, the server never loads `cryptography`.
        maps = Path(f"/proc/{proc.pid}/maps")
        if maps.exists():
            assert "cryptography" not in maps.read_text()
    finally:
        out = stop(proc)
    assert f"listening on http://127.0.0.1:{client_port}" in out
    # Logs as `chatgo run` sets them up: each request's access line carries its request ID.
    assert re.search(r"INFO chatgo\.access GET-\d+: 127\.0\.0\.1 - GET /_matrix/client/versions 200 ", out), out
    assert "stopping embedded PostgreSQL" in out
    assert (own_tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    # The cluster is stopped: no postmaster.pid left behind.
    assert not (own_tmp_path / "data" / "postgres" / "postmaster.pid").exists()

    # register-user against the stopped server's embedded database, then log in after a restart.
    result = chatgo("register-user", "-c", str(config_path), "-u", "admin", "-p", "admin-pass", "--admin")
    assert result.returncode == 0, result.stderr
    assert "created @admin:cli.test (admin)" in result.stdout
    result = chatgo("register-user", "-c", str(config_path), "-u", "admin", "-p", "x")
    assert result.returncode == 1 and "M_USER_IN_USE" in result.stderr
    proc = run_server(config_path)
    try:
        wait_for(f"http://127.0.0.1:{client_port}/_matrix/client/versions", proc)
        import json

        request = urllib.request.Request(
            f"http://127.0.0.1:{client_port}/_matrix/client/v3/login", method="POST",
            data=json.dumps({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "admin"},
                             "password": "admin-pass"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert json.loads(resp.read())["user_id"] == "@admin:cli.test"
    finally:
        stop(proc)


def test_run_with_a_postgresql_url(tmp_path, pg_server_url):
    import asyncio

    import asyncpg

    async def create():
        conn = await asyncpg.connect(pg_server_url, database="postgres")
        await conn.execute('DROP DATABASE IF EXISTS "chatgo_cli_url"')
        await conn.execute('CREATE DATABASE "chatgo_cli_url"')
        await conn.close()

    asyncio.run(create())
    from tests.conftest import database_url

    url = database_url(pg_server_url, "chatgo_cli_url")
    config_path, client_port, _ = generate(tmp_path)
    raw = yaml.safe_load(config_path.read_text())
    raw["tuning"]["listen_backlog"] = 1000  # not the default 4096: the setting is what is seen
    config_path.write_text(yaml.safe_dump(raw))
    proc = run_server(config_path, env={"CHATGO_DATABASE_URL": url})
    try:
        wait_for(f"http://127.0.0.1:{client_port}/_matrix/client/versions", proc)
        # The listener queues as many connections as tuning.listen_backlog says (aiohttp's
        # default is 128): for a listening socket, `ss` shows the accept queue's size as Send-Q.
        ss = subprocess.run(["ss", "-ltnH", f"sport = :{client_port}"], capture_output=True, text=True) \
            if shutil.which("ss") else None
        if ss is not None and ss.returncode == 0 and ss.stdout.strip():
            somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
            assert int(ss.stdout.split()[2]) == min(1000, somaxconn), ss.stdout
    finally:
        stop(proc)
    # No embedded cluster was created; the schema went into the named database.
    assert not (tmp_path / "data" / "postgres").exists()

    async def tables():
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SELECT count(*) FROM schema_version")
        finally:
            await conn.close()

    assert asyncio.run(tables()) >= 1


def test_routes_lists_handlers():
    result = chatgo("routes")
    assert result.returncode == 0, result.stderr
    assert "/_matrix/client/v3/account/whoami" in result.stdout
    assert "homeserver.api.client.whoami.get_token_owner" in result.stdout


def test_bad_config_names_the_key(tmp_path):
    path = tmp_path / "homeserver.yaml"
    path.write_text("server_name: x\nlisteners: [{port: 1}]\nregistraton: {}\n")
    result = chatgo("run", "-c", str(path))
    assert result.returncode != 0
    assert "registraton: unknown key" in result.stderr


def test_bare_run_in_a_fresh_directory_generates_a_localhost_config(own_tmp_path):
    port = free_port()
    # The listeners override keeps the test off the default ports.
    env = {"CHATGO_LISTENERS": f'[{{"port": {port}, "resources": ["client"]}}]'}
    proc = subprocess.Popen([sys.executable, "-m", "homeserver", "run"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **env}, cwd=own_tmp_path)
    try:
        versions = wait_for(f"http://127.0.0.1:{port}/_matrix/client/versions", proc)
        assert "v1.19" in versions["versions"]
    finally:
        out = stop(proc)
    assert "generating one for 'localhost'" in out
    raw = yaml.safe_load((own_tmp_path / "chatgo-data" / "homeserver.yaml").read_text())
    assert raw["server_name"] == "localhost"
    assert (own_tmp_path / "chatgo-data" / "signing.key").exists()


def test_client_listener_serves_tls_from_a_configured_certificate(own_tmp_path):
    import json
    import ssl

    from federation.tls import generate_self_signed_certificate

    config_path, _, _ = generate(own_tmp_path)
    cert, key = own_tmp_path / "client.crt", own_tmp_path / "client.key"
    generate_self_signed_certificate("localhost", cert, key)
    port = free_port()
    listeners = [{"port": port, "resources": ["client"], "tls_certificate_path": str(cert),
                  "tls_private_key_path": str(key)}]
    proc = run_server(config_path, env={"CHATGO_LISTENERS": json.dumps(listeners)})
    context = ssl.create_default_context(cafile=str(cert))  # trust exactly that certificate
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"https://localhost:{port}/_matrix/client/versions",
                                            context=context, timeout=2) as resp:
                    assert "v1.19" in json.loads(resp.read())["versions"]
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        out = stop(proc)
    assert f"listening on https://127.0.0.1:{port}" in out


@pytest.fixture
def own_tmp_path():
    """A temporary directory outside pytest's: as root, the embedded PostgreSQL runs as another
    user who must traverse it, and every pytest session that starts on the machine takes
    group and other permissions off pytest's base directory again."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="chatgo-cli-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_crash_leaks_no_embedded_postgresql(own_tmp_path):
    """SIGKILL leaves the embedded cluster running; the next start reuses it and its clean stop
    stops it (the dead process no longer counts as a user of the cluster)."""
    config_path, client_port, _ = generate(own_tmp_path)
    pid_file = own_tmp_path / "data" / "postgres" / "postmaster.pid"
    proc = run_server(config_path)
    try:
        wait_for(f"http://127.0.0.1:{client_port}/_matrix/client/versions", proc)
    finally:
        proc.kill()  # a crash: nothing is cleaned up
        proc.communicate(timeout=30)
    postmaster = int(pid_file.read_text().split()[0])
    os.kill(postmaster, 0)  # still running, orphaned

    try:
        proc = run_server(config_path)
        try:
            wait_for(f"http://127.0.0.1:{client_port}/_matrix/client/versions", proc)
        finally:
            out = stop(proc)
        assert "forgetting processes that died holding it" in out
        assert "stopping embedded PostgreSQL" in out
        assert not pid_file.exists()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(postmaster, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"PostgreSQL {postmaster} still runs after a clean stop")
        assert _wait_no_postgres(own_tmp_path / "data" / "postgres") == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(postmaster, signal.SIGTERM)  # never leak it from a failed test


@pytest.mark.parametrize("pid_reused", [False, True], ids=["pid-dead", "pid-reused"])
def test_a_crash_that_also_killed_postgresql_recovers(own_tmp_path, pid_reused):
    """SIGKILL both `chatgo run` and its embedded postmaster: `postmaster.pid` and the handle
    list name dead processes. The next start recovers on its own, serves, and its clean stop
    leaves no PostgreSQL process in the data directory. `pid-reused`: the dead postmaster's PID
    now belongs to another process, as after a container restart (PIDs start again at 1)."""
    config_path, client_port, _ = generate(own_tmp_path)
    pgdata = own_tmp_path / "data" / "postgres"
    pid_file = pgdata / "postmaster.pid"
    proc = run_server(config_path)
    try:
        wait_for(f"http://127.0.0.1:{client_port}/_matrix/client/versions", proc)
        postmaster = int(pid_file.read_text().split()[0])
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    try:
        os.kill(postmaster, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _process_exists(postmaster) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _process_exists(postmaster)
        assert pid_file.exists()  # stale: it names a dead postmaster
        assert str(proc.pid) in (pgdata / ".handle_pids.json").read_text()
        if pid_reused:
            stranger = subprocess.Popen(["sleep", "120"])
            for name in ("postmaster.pid", ".s.PGSQL.5432.lock"):
                lines = (pgdata / name).read_text().splitlines()
                (pgdata / name).write_text("\n".join([str(stranger.pid), *lines[1:]]) + "\n")

        proc = run_server(config_path)
        try:
            wait_for(f"http://127.0.0.1:{client_port}/_matrix/client/versions", proc)
            assert postgres_processes(pgdata)  # a new cluster serves it
        finally:
            out = stop(proc)
        assert "stopping embedded PostgreSQL" in out
        assert not pid_file.exists()
        assert _wait_no_postgres(pgdata) == []
        if pid_reused:
            assert stranger.poll() is None  # recovery left the unrelated process alone
    finally:
        for process in postgres_processes(pgdata):  # never leak one from a failed test
            process.kill()
        if pid_reused:
            stranger.kill()
            stranger.wait()


def _process_exists(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_no_postgres(pgdata: Path, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while (left := postgres_processes(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
