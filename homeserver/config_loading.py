"""Loading the configuration: YAML file -> environment overrides -> typed, checked Config.

`load_config(path)` reads the file, applies the environment overrides (CHATGO_DATABASE_URL,
CHATGO_LISTENERS, CHATGO_REGISTRATION_SHARED_SECRET), lifts Synapse-style top-level keys
(`rc_*`, `max_event_delay_duration`) into their sections, builds the dataclasses of
homeserver/config.py field by field (unknown keys and ill-typed values are refused with the
key's path) and validates what the types cannot say.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from homeserver.config import (
    LOCALPART,
    RESOURCES,
    Config,
    ConfigError,
    DelayedEventsConfig,
    FederationConfig,
    FederationRateLimits,
    RateLimit,
    RateLimitConfig,
    parse_duration_ms,
)


def load_config(path: str | os.PathLike[str], env: typing.Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    raw = dict(raw)
    raw["config_dir"] = str(path.resolve().parent)
    apply_env_overrides(raw, env)
    return config_from_dict(raw)


def apply_env_overrides(raw: dict[str, Any], env: typing.Mapping[str, str]) -> None:
    if url := env.get("CHATGO_DATABASE_URL"):
        database = dict(raw.get("database") or {})
        database["url"] = url
        raw["database"] = database
    if listeners := env.get("CHATGO_LISTENERS"):
        try:
            raw["listeners"] = yaml.safe_load(listeners)
        except yaml.YAMLError as exc:
            raise ConfigError(f"CHATGO_LISTENERS: not valid YAML/JSON: {exc}") from exc
    if secret := env.get("CHATGO_REGISTRATION_SHARED_SECRET"):
        registration = dict(raw.get("registration") or {})
        registration["shared_secret"] = secret
        raw["registration"] = registration


def config_from_dict(raw: dict[str, Any]) -> Config:
    config = _build(Config, _lift_delayed_events(_lift_rate_limits(raw)), "")
    _validate(config)
    return config


def _lift_rate_limits(raw: dict[str, Any]) -> dict[str, Any]:
    """Synapse's `rc_*` keys at the top level go under `rate_limiting` (where we keep them), so
    that an admin can paste them from a Synapse config."""
    names = [name for name in raw if isinstance(name, str) and name.startswith("rc_")]
    if not names:
        return raw
    raw = dict(raw)
    section = raw.get("rate_limiting") or {}
    if not isinstance(section, dict):
        raise ConfigError("rate_limiting: expected a mapping")
    section = dict(section)
    for name in names:
        if name in section:
            raise ConfigError(f"{name}: given both at the top level and under rate_limiting")
        section[name] = raw.pop(name)
    raw["rate_limiting"] = section
    return raw


def _lift_delayed_events(raw: dict[str, Any]) -> dict[str, Any]:
    """Synapse's top-level `max_event_delay_duration` goes under `delayed_events`."""
    if "max_event_delay_duration" not in raw:
        return raw
    raw = dict(raw)
    section = raw.get("delayed_events") or {}
    if not isinstance(section, dict):
        raise ConfigError("delayed_events: expected a mapping")
    if section.get("max_event_delay_duration") is not None:
        raise ConfigError("max_event_delay_duration: given both at the top level and under delayed_events")
    raw["delayed_events"] = {**section, "max_event_delay_duration": raw.pop("max_event_delay_duration")}
    return raw


def _validate_delayed_events(delayed: DelayedEventsConfig) -> None:
    if delayed.max_event_delay_duration is not None:
        try:
            max_delay = parse_duration_ms(delayed.max_event_delay_duration)
        except ValueError:
            max_delay = 0
        if max_delay <= 0:
            raise ConfigError("delayed_events.max_event_delay_duration: expected a positive duration "
                              "(milliseconds, or e.g. 24h)")
    if delayed.max_delayed_events_per_user < 0:
        raise ConfigError("delayed_events.max_delayed_events_per_user: must not be negative")


def _validate_rate_limits(limits: RateLimitConfig) -> None:
    def check(where: str, limit: RateLimit | None) -> None:
        if limit is not None and (limit.per_second < 0 or limit.burst_count < 0):
            raise ConfigError(f"rate_limiting.{where}: per_second and burst_count must not be negative")

    for f in dataclasses.fields(limits):
        value = getattr(limits, f.name)
        if isinstance(value, RateLimit) or value is None:
            check(f.name, value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, FederationRateLimits):
            for sub in dataclasses.fields(value):
                check(f"{f.name}.{sub.name}", getattr(value, sub.name))
    if limits.per_second <= 0 or limits.burst < 1:
        raise ConfigError("rate_limiting.per_second and burst: must be positive")
    federation = limits.rc_federation
    if min(federation.window_size, federation.sleep_limit, federation.concurrent) < 1 \
            or min(federation.sleep_delay, federation.reject_limit) < 0:
        raise ConfigError("rate_limiting.rc_federation: window_size, sleep_limit and concurrent must be "
                          "positive, sleep_delay and reject_limit not negative")


def _validate_federation(federation: FederationConfig) -> None:
    for name in ("ip_range_denylist", "ip_range_allowlist"):
        for i, ip_range in enumerate(getattr(federation, name)):
            try:
                ipaddress.ip_network(ip_range, strict=False)
            except ValueError:
                raise ConfigError(f"federation.{name}[{i}]: not an IP address or range") from None
    keys = [(f"old_signing_keys[{i}]", k) for i, k in enumerate(federation.old_signing_keys)]
    for i, server in enumerate(federation.trusted_key_servers):
        keys += [(f"trusted_key_servers[{i}].verify_keys[{j}]", k) for j, k in enumerate(server.verify_keys)]
    for where, key in keys:
        algorithm, _, version = key.key_id.partition(":")
        if algorithm != "ed25519" or not version or not all(c.isalnum() or c == "_" for c in version):
            raise ConfigError(f"federation.{where}.key_id: expected ed25519:<version>")
    if federation.key_refresh_interval_ms <= 0:
        raise ConfigError("federation.key_refresh_interval_ms: must be positive")


def _validate(config: Config) -> None:
    _validate_federation(config.federation)
    for cache in dataclasses.fields(config.caches):
        if getattr(config.caches, cache.name) < 0:
            raise ConfigError(f"caches.{cache.name}: must not be negative")
    if config.auth.argon2_max_concurrent < 1:
        raise ConfigError("auth.argon2_max_concurrent: must be at least 1")
    tuning = config.tuning
    if len(tuning.gc_thresholds) != 3 or min(tuning.gc_thresholds) < 1:
        raise ConfigError("tuning.gc_thresholds: expected three positive integers")
    if tuning.listen_backlog < 1 or tuning.sync_builds_at_once < 1:
        raise ConfigError("tuning: listen_backlog and sync_builds_at_once must be at least 1")
    _validate_rate_limits(config.rate_limiting)
    _validate_delayed_events(config.delayed_events)
    if config.registration.requires_captcha and not (config.registration.recaptcha_public_key
                                                      and config.registration.recaptcha_private_key):
        raise ConfigError("registration.requires_captcha: needs recaptcha_public_key and recaptcha_private_key")
    if config.email.enabled and not config.email.notif_from:
        raise ConfigError("email.notif_from: needed when email.enabled is true")
    if config.cas.enabled and not config.cas.server_url:
        raise ConfigError("cas.server_url: needed when cas.enabled is true")
    if config.log_format not in ("text", "json"):
        raise ConfigError("log_format: expected text or json")
    if not config.listeners:
        raise ConfigError("listeners: at least one listener is needed")
    validity = config.account_validity
    if validity.enabled and validity.period is None:
        raise ConfigError("account_validity.period: needed when account_validity.enabled is true")
    if validity.period is not None:
        try:
            if parse_duration_ms(validity.period) <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError("account_validity.period: expected a positive duration such as 6w") from None
    for i, listener in enumerate(config.listeners):
        if not 0 <= listener.port <= 65535:
            raise ConfigError(f"listeners[{i}].port: must be between 0 and 65535")
        unknown = set(listener.resources) - RESOURCES
        if unknown:
            raise ConfigError(f"listeners[{i}].resources: unknown resource(s) {sorted(unknown)}")
        if bool(listener.tls_certificate_path) != bool(listener.tls_private_key_path):
            raise ConfigError(f"listeners[{i}]: set both tls_certificate_path and tls_private_key_path")
    if not config.server_name or "/" in config.server_name:
        raise ConfigError("server_name: must be a host name with an optional port")
    appservice = config.appservice
    if not 0 < appservice.retry_min_interval_ms <= appservice.retry_max_interval_ms:
        raise ConfigError("appservice.retry_min_interval_ms: must be positive and at most retry_max_interval_ms")
    if appservice.request_timeout_ms <= 0:
        raise ConfigError("appservice.request_timeout_ms: must be positive")
    if config.server_notices is not None and not LOCALPART.fullmatch(config.server_notices.system_mxid_localpart):
        raise ConfigError("server_notices.system_mxid_localpart: not a valid localpart (a-z, 0-9, ._=-/+)")
    for i, ip_range in enumerate(config.media.url_preview_ip_range_allowlist):
        try:
            ipaddress.ip_network(ip_range, strict=False)
        except ValueError:
            raise ConfigError(f"media.url_preview_ip_range_allowlist[{i}]: not an IP address or range") from None


def _build(cls: type, raw: Any, where: str, base: Any = None) -> Any:
    """`base`: the field's default value; keys the section leaves out keep base's values (so a
    partial `rc_login: {address: {per_second: 1}}` keeps that limit's own default burst)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(raw) - set(fields)
    if unknown:
        raise ConfigError(f"{_join(where, sorted(unknown)[0])}: unknown key")
    values = {}
    for name, f in fields.items():
        if name in raw:
            values[name] = _convert(hints[name], raw[name], _join(where, name), _default_of(f))
        elif base is not None:
            values[name] = getattr(base, name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(where, name)}: required")
    return cls(**values)


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _convert(tp: Any, value: Any, where: str, base: Any = None) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where, base)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, where, base if dataclasses.is_dataclass(base) else None)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list")
        inner = typing.get_args(tp)[0]
        return tuple(_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string")
        return str(value)
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover - a bug in Config


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
