"""Loading homeserver.yaml: defaults, errors that name the key, environment overrides."""

from pathlib import Path

import pytest

from homeserver.config import ConfigError

from homeserver.config_loading import config_from_dict, load_config
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
    ({"server_name": "a", "listeners": [{"port": 1}], "log_format": "xml"}, "log_format: expected text or json"),
    ({"server_name": "a", "listeners": [{"port": 1}], "tuning": {"gc_thresholds": [700, 10]}},
     "tuning.gc_thresholds: expected three positive integers"),
    ({"server_name": "a", "listeners": [{"port": 1}], "tuning": {"sync_builds_at_once": 0}},
     "tuning: listen_backlog and sync_builds_at_once must be at least 1"),
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


def test_env_overrides_the_registration_shared_secret(tmp_path):
    path = tmp_path / "homeserver.yaml"
    path.write_text(render_config("example.org", shared_secret="from-the-file"))
    assert load_config(path, env={}).registration.shared_secret == "from-the-file"
    config = load_config(path, env={"CHATGO_REGISTRATION_SHARED_SECRET": "from-a-secret"})
    assert config.registration.shared_secret == "from-a-secret"
    assert config.registration.enabled is False  # the rest of the section stays the file's


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("server_name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, env={})


def test_the_template_documents_every_rate_limit_with_its_default(tmp_path):
    from homeserver.config import RateLimitConfig

    path = tmp_path / "homeserver.yaml"
    path.write_text(render_config("example.org"))
    limits = load_config(path, env={}).rate_limiting
    assert limits == RateLimitConfig()
    # Synapse's defaults.
    assert (limits.rc_message.per_second, limits.rc_message.burst_count) == (0.2, 10)
    assert (limits.rc_login.address.per_second, limits.rc_login.address.burst_count) == (0.003, 5)
    assert (limits.rc_invites.per_user.per_second, limits.rc_invites.per_user.burst_count) == (0.003, 5)
    assert (limits.rc_federation.concurrent, limits.rc_federation.reject_limit) == (3, 50)
    assert limits.rc_admin_redaction is None


def test_synapse_rate_limit_keys_at_the_top_level():
    base = {"server_name": "a", "listeners": [{"port": 1}]}
    config = config_from_dict({**base, "rc_message": {"per_second": 0.5, "burst_count": 15.0},
                               "rc_login": {"address": {"per_second": 1}},
                               "rc_joins": {"remote": {"enabled": False}},
                               "rate_limiting": {"per_second": 3}})
    limits = config.rate_limiting
    assert (limits.rc_message.per_second, limits.rc_message.burst_count) == (0.5, 15)
    # A partial limit keeps that limit's own defaults for what it leaves out.
    assert (limits.rc_login.address.per_second, limits.rc_login.address.burst_count) == (1, 5)
    assert limits.rc_login.account.burst_count == 5
    assert limits.rc_joins.remote.enabled is False and limits.rc_joins.local.enabled is True
    assert limits.per_second == 3 and limits.enabled is True


@pytest.mark.parametrize("raw,message", [
    ({"rc_message": {}, "rate_limiting": {"rc_message": {}}}, "rc_message: given both"),
    ({"rc_message": {"per_second": -1}}, "rate_limiting.rc_message"),
    ({"rc_invites": {"per_room": {"burst_count": "x"}}}, "rate_limiting.rc_invites.per_room.burst_count"),
    ({"rc_federation": {"concurrent": 0}}, "rate_limiting.rc_federation"),
    ({"rc_bogus": {}}, "rate_limiting.rc_bogus: unknown key"),
])
def test_bad_rate_limits_name_the_key(raw, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"server_name": "a", "listeners": [{"port": 1}], **raw})
    assert message in str(err.value)


@pytest.mark.parametrize("raw,max_delay_ms", [
    ({}, None),
    ({"delayed_events": {"max_event_delay_duration": 90000}}, 90_000),
    ({"delayed_events": {"max_event_delay_duration": "24h"}}, 86_400_000),
    ({"delayed_events": {"max_event_delay_duration": "500ms"}}, 500),
    # Synapse's top-level key, also over the template's null.
    ({"max_event_delay_duration": "2d"}, 172_800_000),
    ({"max_event_delay_duration": "10s", "delayed_events": {"max_event_delay_duration": None}}, 10_000),
    # No delayed event allowed per user: off, as Synapse.
    ({"delayed_events": {"max_event_delay_duration": "1h", "max_delayed_events_per_user": 0}}, None),
])
def test_delayed_events_max_delay(raw, max_delay_ms):
    config = config_from_dict({"server_name": "a", "listeners": [{"port": 1}], **raw})
    assert config.delayed_events.max_delay_ms == max_delay_ms


@pytest.mark.parametrize("raw,message", [
    ({"delayed_events": {"max_event_delay_duration": "soon"}}, "delayed_events.max_event_delay_duration"),
    ({"delayed_events": {"max_event_delay_duration": 0}}, "delayed_events.max_event_delay_duration"),
    ({"delayed_events": {"max_event_delay_duration": "-5s"}}, "delayed_events.max_event_delay_duration"),
    ({"delayed_events": {"max_delayed_events_per_user": -1}}, "delayed_events.max_delayed_events_per_user"),
    ({"max_event_delay_duration": "1h", "delayed_events": {"max_event_delay_duration": "2h"}},
     "max_event_delay_duration: given both"),
])
def test_bad_delayed_events_settings_name_the_key(raw, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"server_name": "a", "listeners": [{"port": 1}], **raw})
    assert message in str(err.value)


def test_server_notices_section():
    from homeserver.config import ServerNoticesConfig

    base = {"server_name": "x.test", "listeners": [{"port": 8008}]}
    assert config_from_dict(base).server_notices is None
    notices = config_from_dict({**base, "server_notices": {"system_mxid_localpart": "server", "auto_join": True}})
    assert notices.server_notices == ServerNoticesConfig(system_mxid_localpart="server", auto_join=True)
    assert notices.server_notices.room_name == "Server Notices"
    for bad, message in (({}, "server_notices.system_mxid_localpart: required"),
                         ({"system_mxid_localpart": "Not Valid"}, "server_notices.system_mxid_localpart")):
        with pytest.raises(ConfigError, match=message):
            config_from_dict({**base, "server_notices": bad})
def test_account_validity_needs_a_period_as_synapse_writes_it():
    base = {"server_name": "example.org", "listeners": [{"port": 8008}]}
    with pytest.raises(ConfigError, match="account_validity.period: needed"):
        config_from_dict({**base, "account_validity": {"enabled": True}})
    with pytest.raises(ConfigError, match="account_validity.period: expected a positive duration"):
        config_from_dict({**base, "account_validity": {"enabled": True, "period": "six weeks"}})
    config = config_from_dict({**base, "account_validity": {"enabled": True, "period": "6w"}})
    assert config.account_validity.period_ms == 6 * 7 * 86_400_000
    assert config_from_dict({**base, "account_validity": {"period": 3600000}}).account_validity.period_ms is None
