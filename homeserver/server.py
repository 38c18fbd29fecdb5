"""The `chatgo run` process: the database (embedded or from the URL) and its migrations, the
services (homeserver/app.py), one web app per listener, the background tasks, and a clean
stop on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from federation.tls import generate_self_signed_certificate, server_ssl_context
from homeserver.app import start_services
from homeserver.config import Config, ListenerConfig
from homeserver.memory import freeze_startup, tune_gc, tune_malloc
from homeserver.web_app import make_web_app
from storage.database import Database
from storage.embedded import DATABASE_NAME, EmbeddedPostgres, ensure_database
from storage.migrate import migrate

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def open_database(config: Config) -> AsyncIterator[Database]:
    """Connect to the configured database, or start the embedded one; migrate; close on exit."""
    embedded = None
    url = config.database.url
    try:
        if url is None:
            embedded = EmbeddedPostgres(config.data_path / "postgres")
            server_url = await asyncio.to_thread(embedded.start)
            await ensure_database(server_url, DATABASE_NAME)
            url = embedded.url(DATABASE_NAME)
        db = await Database.connect(
            url, min_size=config.database.min_connections, max_size=config.database.max_connections
        )
        try:
            applied = await migrate(db)
            if applied:
                logger.info("applied migrations %s", applied)
            yield db
        finally:
            await db.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def ensure_tls_files(config: Config) -> None:
    """Generate the server's self-signed certificate when a TLS listener needs it and it is absent."""
    needs_default = any(l.tls and not l.tls_certificate_path for l in config.listeners)
    cert, key = config.path(config.tls_certificate_path), config.path(config.tls_private_key_path)
    if needs_default and not (cert.exists() and key.exists()):
        logger.info("generating a self-signed TLS certificate for %s in %s", config.server_name, cert)
        generate_self_signed_certificate(config.server_name, cert, key)


def _ssl_context_for(config: Config, listener: ListenerConfig):
    if listener.tls_certificate_path and listener.tls_private_key_path:
        return server_ssl_context(config.path(listener.tls_certificate_path), config.path(listener.tls_private_key_path))
    if listener.tls:
        return server_ssl_context(config.path(config.tls_certificate_path), config.path(config.tls_private_key_path))
    return None


async def serve(config: Config, stop: asyncio.Event) -> None:
    """Run the server until `stop` is set."""
    config.data_path.mkdir(parents=True, exist_ok=True)
    ensure_tls_files(config)
    async with open_database(config) as db:
        services = await start_services(config, db)
        runners: list[web.AppRunner] = []
        try:
            for listener in config.listeners:
                app = make_web_app(services, listener.resources, x_forwarded=listener.x_forwarded)
                runner = web.AppRunner(app, access_log=None, handle_signals=False)
                await runner.setup()
                runners.append(runner)
                ssl_context = _ssl_context_for(config, listener)
                for address in listener.bind_addresses:
                    site = web.TCPSite(runner, address, listener.port, ssl_context=ssl_context,
                                       backlog=config.tuning.listen_backlog)
                    await site.start()
                    scheme = "https" if ssl_context else "http"
                    logger.info("listening on %s://%s:%d for %s", scheme, address, listener.port,
                                ", ".join(listener.resources))
            await services.replication.start()
            await services.room_tasks.recover()
            services.federation_sender.start()
            services.delayed_events.start()
            services.appservice_sender.start()
            await services.partial_state_resync.resume()
            freeze_startup()
            logger.info("ChatGO %s is ready", config.server_name)
            pruning = asyncio.create_task(services.retention.run_forever())
            await stop.wait()
            pruning.cancel()
            logger.info("stopping")
        finally:
            for runner in runners:
                await runner.cleanup()
            await services.room_tasks.stop()
            await services.partial_state_resync.stop()
            await services.events.drain()  # push actions of the last events, then their announcement
            await services.replication.stop()
            await services.federation_sender.stop()
            await services.delayed_events.stop()
            await services.appservice_sender.stop()
            await services.devices.flush()
            await services.pushers.close()
            await services.threepids.close()
            await services.federation_client.close()


def run(config: Config) -> None:
    """The `chatgo run` process: serve until SIGINT or SIGTERM, then stop cleanly."""
    tune_malloc()  # before the first worker thread: glibc sizes arenas as threads appear
    tune_gc(config.tuning.gc_thresholds)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())
    logger.info("stopped")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed (its polling, sockets and scheduling are C:
    much less CPU per request and per query than asyncio's, see docs/performance.md), else
    asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
