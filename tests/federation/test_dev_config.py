"""`chatgo generate-config --dev-federation`: a config for a local test network of servers."""

import yaml

from homeserver.config import DEFAULT_IP_RANGE_DENYLIST

from homeserver.config_loading import load_config
from tests.test_cli import chatgo


def test_dev_federation_config(tmp_path):
    result = chatgo("generate-config", "--server-name", "localhost:8481", "--data-dir", str(tmp_path / "a"),
                    "--dev-federation")
    assert result.returncode == 0, result.stderr
    raw = yaml.safe_load((tmp_path / "a" / "homeserver.yaml").read_text())
    assert raw["federation"]["verify_certificates"] is False
    assert raw["federation"]["ip_range_allowlist"] == ["127.0.0.0/8", "::1/128"]
    config = load_config(tmp_path / "a" / "homeserver.yaml", env={})
    assert config.federation.ip_range_denylist == DEFAULT_IP_RANGE_DENYLIST
    assert config.federation.trusted_key_servers == ()
    # Federation and keys are served over TLS on their own listener; clients keep theirs.
    client, federation = config.listeners
    assert client.resources == ("client",)
    assert (federation.resources, federation.tls) == (("federation", "keys"), True)


def test_default_config_checks_certificates_and_denies_loopback(tmp_path):
    result = chatgo("generate-config", "--server-name", "example.org", "--data-dir", str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    config = load_config(tmp_path / "b" / "homeserver.yaml", env={})
    assert config.federation.verify_certificates is True
    assert config.federation.ip_range_allowlist == ()
    assert config.federation.key_refresh_interval_ms == 24 * 3600 * 1000


import pytest  # noqa: E402

from homeserver.config import ConfigError  # noqa: E402

from homeserver.config_loading import config_from_dict


@pytest.mark.parametrize("federation,message", [
    ({"ip_range_allowlist": ["nope"]}, "federation.ip_range_allowlist[0]"),
    ({"ip_range_denylist": ["10.0.0.0/33"]}, "federation.ip_range_denylist[0]"),
    ({"old_signing_keys": [{"key_id": "rsa:1", "key": "x", "expired_ts": 1}]}, "federation.old_signing_keys[0].key_id"),
    ({"trusted_key_servers": [{"server_name": "n", "verify_keys": [{"key_id": "ed25519:", "key": "x"}]}]},
     "federation.trusted_key_servers[0].verify_keys[0].key_id"),
    ({"server_name_overrides": [{"server_name": "a", "host": "b"}]}, "federation.server_name_overrides[0].port"),
    ({"verify_certificate": False}, "federation.verify_certificate: unknown key"),
])
def test_federation_config_errors_name_the_key(federation, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"server_name": "a", "listeners": [{"port": 1}], "federation": federation})
    assert message in str(err.value)
