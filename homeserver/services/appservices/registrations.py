"""Reading the registration files named by `app_service_config_files` (relative to the
config's directory), once at start: a missing or unreadable file, a bad value or a token or
ID used twice is a ConfigError naming the file (and the line), so the server does not start."""

from __future__ import annotations

from homeserver.config import Config, ConfigError
from homeserver.core.appservices import AppServiceRegistry, RegistrationError, check_unique, parse_registration


def load_registry(config: Config) -> AppServiceRegistry:
    services = []
    for name in config.app_service_config_files:
        path = config.path(name)
        try:
            text = path.read_text()
        except OSError as err:
            raise ConfigError(f"app_service_config_files: cannot read {path}: {err.strerror or err}") from None
        try:
            services.append(parse_registration(text, str(path), config.server_name))
        except RegistrationError as err:
            raise ConfigError(f"app_service_config_files: {err}") from None
    try:
        check_unique(services)
    except RegistrationError as err:
        raise ConfigError(f"app_service_config_files: {err}") from None
    return AppServiceRegistry(services)
