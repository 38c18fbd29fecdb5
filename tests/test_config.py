"""Loading homeserver.yaml: defaults, errors that name the key, environment overrides."""

from pathlib import Path

import pytest

from homeserver.config import ConfigError, config_from_dict, load_config
from homeserver.config_template import render_config

REPO = Path(__file__).resolve().parent.parent


def test_example_config_is_the_rendered_template():
    example = (REPO / "configs" / "homeserver.yaml").read_text()
    assert example == render_config("localhost")


def test_example_config_loads(tmp_path):
    path = tmp_path / "homeserver.yaml"
    path.write_text(render_config("example.org", client_port=9008, enable_registration=True))
    config = load_config(path, env={})
    assert config.server_name == "example.org"
    assert config.registration.enabled is True
    assert config.database.url is None
    client, federation = config.listeners
    assert (client.port, client.resources, client.tls) == (9008, ("client",), False)
    assert (federation.port, federation.resources, federation.tls) == (8448, ("federation", "keys"), True)
    assert federation.bind_addresses == ("0.0.0.0",)
    assert config.data_path == tmp_path


@pytest.mark.parametrize("raw,message", [
    ({"listeners": [{"port": 1}]}, "server_name: required"),
    ({"server_name": "a", "listeners": [{"port": "x"}]}, "listeners[0].port: expected an integer"),
    ({"server_name": "a", "listeners": [{"port": 1, "resources": ["bogus"]}]}, "listeners[0].resources"),
    ({"server_name": "a", "listeners": [{"port": 1}], "databse": {}}, "databse: unknown key"),
    ({"server_name": "a", "listeners": [{"port": 1}], "registration": {"enabled": "yes"}},
     "registration.enabled: expected true or false"),
    ({"server_name": "a", "listeners": []}, "listeners"),
    ({"server_name": "a", "listeners": [{"port": 1, "tls_certificate_path": "c"}]}, "listeners[0]"),
])
def test_errors_name_the_bad_key(raw, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert message in str(err.value)


def test_env_overrides_database_and_listeners(tmp_path):
    path = tmp_path / "homeserver.yaml"
    path.write_text(render_config("example.org"))
    config = load_config(path, env={
        "CHATGO_DATABASE_URL": "postgresql://u@db:5432/chatgo",
        "CHATGO_LISTENERS": '[{"port": 8443, "bind_addresses": ["0.0.0.0"], "resources": ["client", "federation"], "tls": true}]',
    })
    assert config.database.url == "postgresql://u@db:5432/chatgo"
    assert len(config.listeners) == 1
    assert config.listeners[0].resources == ("client", "federation")


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("server_name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, env={})


def test_account_validity_needs_a_period_as_synapse_writes_it():
    base = {"server_name": "example.org", "listeners": [{"port": 8008}]}
    with pytest.raises(ConfigError, match="account_validity.period: needed"):
        config_from_dict({**base, "account_validity": {"enabled": True}})
    with pytest.raises(ConfigError, match="account_validity.period: expected a positive duration"):
        config_from_dict({**base, "account_validity": {"enabled": True, "period": "six weeks"}})
    config = config_from_dict({**base, "account_validity": {"enabled": True, "period": "6w"}})
    assert config.account_validity.period_ms == 6 * 7 * 86_400_000
    assert config_from_dict({**base, "account_validity": {"period": 3600000}}).account_validity.period_ms is None
