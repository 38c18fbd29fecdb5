"""`chatgo` command line: run, generate-config, generate-signing-key, register-user,
registration-token, routes."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import secrets
import sys
from pathlib import Path

from signedjson.key import generate_signing_key, write_signing_keys

from homeserver import app, server, web_app
from homeserver.api.http import routes_table
from homeserver.config import Config, ConfigError
from homeserver.config_loading import load_config
from homeserver.config_template import render_config
from homeserver.errors import MatrixError
from homeserver.logs import setup_logging
from homeserver.services.appservices.registrations import load_registry

DEFAULT_DATA_DIR = Path("chatgo-data")
CONFIG_NAME = "homeserver.yaml"
ALL_RESOURCES = ["client", "federation", "keys", "media", "admin", "metrics"]


def generate_config(
    server_name: str, data_dir: Path, *, client_port: int = 8008, federation_port: int = 8448,
    enable_registration: bool = False, database_url: str | None = None, dev_federation: bool = False,
    public_baseurl: str | None = None,
) -> Path:
    """Write DIR/homeserver.yaml, a fresh signing key and, for TLS listeners, a self-signed
    certificate (so `chatgo run` need not make one: that would load `cryptography` into the
    server for good); refuse to overwrite a config."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = data_dir / CONFIG_NAME
    if config_path.exists():
        raise FileExistsError(f"{config_path} already exists")
    key_path = data_dir / "signing.key"
    if not key_path.exists():
        write_new_signing_key(key_path)
    config_path.write_text(render_config(
        server_name, client_port=client_port, federation_port=federation_port,
        enable_registration=enable_registration, database_url=database_url, dev_federation=dev_federation,
        shared_secret=secrets.token_urlsafe(32), public_baseurl=public_baseurl,
    ))
    config_path.chmod(0o600)  # it holds the registration shared secret
    server.ensure_tls_files(load_config(config_path))
    return config_path


def write_new_signing_key(path: Path) -> None:
    """A fresh ed25519 signing key in Synapse's key file format, readable by its owner only."""
    key = generate_signing_key("a_" + _random_key_suffix())
    with path.open("x") as f:  # never overwrite a key: peers remember it
        path.chmod(0o600)
        write_signing_keys(f, [key])


def _random_key_suffix() -> str:
    import secrets
    import string

    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(4))


def _load(path: str | None) -> Config:
    try:
        if path is None:
            default = DEFAULT_DATA_DIR / CONFIG_NAME
            if not default.exists():
                print(f"No config given and none at {default}: generating one for 'localhost'.", file=sys.stderr)
                generate_config("localhost", DEFAULT_DATA_DIR)
            path = str(default)
        return load_config(path)
    except ConfigError as exc:
        raise SystemExit(f"config error: {exc}") from None


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    try:  # a bad appservice registration stops the server before it starts anything
        load_registry(config)
    except ConfigError as exc:
        raise SystemExit(f"config error: {exc}") from None
    setup_logging(config.log_level, config.log_format, access_log=config.access_log)
    server.run(config)
    return 0


def cmd_generate_config(args: argparse.Namespace) -> int:
    try:
        path = generate_config(
            args.server_name, Path(args.data_dir), client_port=args.client_port,
            federation_port=args.federation_port, enable_registration=args.enable_registration,
            database_url=args.database_url, dev_federation=args.dev_federation,
            public_baseurl=args.public_baseurl,
        )
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def cmd_generate_signing_key(args: argparse.Namespace) -> int:
    if args.output == "-":
        key = generate_signing_key("a_" + _random_key_suffix())
        write_signing_keys(sys.stdout, [key])
        return 0
    try:
        write_new_signing_key(Path(args.output))
    except FileExistsError:
        print(f"error: {args.output} already exists", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0


def cmd_register_user(args: argparse.Namespace) -> int:
    config = _load(args.config)
    _setup_logging("WARNING")
    user = args.user or input("New user localpart: ").strip()
    password = args.password
    if password is None and not args.no_password:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Confirm password: "):
            print("error: passwords do not match", file=sys.stderr)
            return 1

    async def main() -> str:
        async with server.open_database(config) as db:
            services = await app.start_services(config, db)
            return await services.accounts.create_user(user, password, admin=args.admin)

    try:
        user_id = asyncio.run(main())
    except MatrixError as exc:
        print(f"error: {exc.message} ({exc.errcode})", file=sys.stderr)
        return 1
    print(f"created {user_id}{' (admin)' if args.admin else ''}")
    return 0


def cmd_registration_token(args: argparse.Namespace) -> int:
    config = _load(args.config)
    _setup_logging("WARNING")

    async def main() -> None:
        async with server.open_database(config) as db:
            tokens = (await app.start_services(config, db)).registration_tokens
            if args.action == "create":
                print((await tokens.create(args.token, uses_allowed=args.uses, expiry_ts=args.expiry_ts)).token)
            elif args.action == "list":
                for row in await tokens.list():
                    print(f"{row.token}\tuses_allowed={row.uses_allowed}\tpending={row.pending}"
                          f"\tcompleted={row.completed}\texpiry_ts={row.expiry_ts}")
            else:
                await tokens.delete(args.token)

    try:
        asyncio.run(main())
    except MatrixError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


def cmd_routes(args: argparse.Namespace) -> int:
    modules = web_app.modules_for(ALL_RESOURCES)
    for info in routes_table(modules):
        for path in info.full_paths():
            print(f"{info.method:7} {path:80} auth={info.auth.value:8} {info.module}.{info.handler_name}")
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from importlib.metadata import version

    from homeserver.api.openapi import render_openapi

    text = render_openapi(web_app.modules_for(ALL_RESOURCES), version("chatgo"))
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatgo", description="ChatGO Matrix homeserver")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("run", help="run the server (generates a localhost config in ./chatgo-data when none is given)")
    p.add_argument("-c", "--config", help="path to homeserver.yaml")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("generate-config", help="write DIR/homeserver.yaml and a signing key")
    p.add_argument("--server-name", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--client-port", type=int, default=8008)
    p.add_argument("--federation-port", type=int, default=8448)
    p.add_argument("--enable-registration", action="store_true")
    p.add_argument("--database-url", help="use this PostgreSQL instead of the embedded one")
    p.add_argument("--dev-federation", action="store_true",
                   help="for a local test network: no TLS certificate checks, loopback peers allowed")
    p.add_argument("--public-baseurl", help="the URL clients reach the client API at (default https://SERVER_NAME/)")
    p.set_defaults(func=cmd_generate_config)

    p = sub.add_parser("generate-signing-key", help="write a new signing key (e.g. for a Kubernetes Secret)")
    p.add_argument("-o", "--output", default="-", help="file to create (refuses to overwrite); - for stdout")
    p.set_defaults(func=cmd_generate_signing_key)

    p = sub.add_parser("register-user", help="create a user account")
    p.add_argument("-c", "--config")
    p.add_argument("-u", "--user", help="localpart of the new user")
    p.add_argument("-p", "--password")
    p.add_argument("--no-password", action="store_true", help="create the account without a password")
    p.add_argument("-a", "--admin", action="store_true", help="make the user a server admin")
    p.set_defaults(func=cmd_register_user)

    p = sub.add_parser("registration-token", help="manage registration tokens")
    p.add_argument("-c", "--config")
    tsub = p.add_subparsers(dest="action", required=True)
    c = tsub.add_parser("create")
    c.add_argument("token", nargs="?")
    c.add_argument("--uses", type=int)
    c.add_argument("--expiry-ts", type=int, help="expiry, milliseconds since the epoch")
    tsub.add_parser("list")
    d = tsub.add_parser("delete")
    d.add_argument("token")
    p.set_defaults(func=cmd_registration_token)

    p = sub.add_parser("routes", help="print every HTTP route and its handler")
    p.set_defaults(func=cmd_routes)

    p = sub.add_parser("openapi", help="print our OpenAPI description (docs/api/openapi.yaml)")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_openapi)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
