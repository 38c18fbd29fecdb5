"""Registration files named by app_service_config_files: read relative to the config's
directory, refused with the file and line named, and `chatgo run` does not start on a bad one."""

from __future__ import annotations

import pytest
import yaml

from homeserver.config import ConfigError
from homeserver.services.appservices.registrations import load_registry
from tests.conftest import make_test_config
from tests.test_cli import chatgo, generate

REGISTRATION = {"id": "irc", "url": "http://127.0.0.1:1", "as_token": "a1", "hs_token": "h1",
                "sender_localpart": "ircbot", "namespaces": {"users": [{"exclusive": True, "regex": "@_irc_.*"}]}}


def write(path, **changes):
    path.write_text(yaml.safe_dump({**REGISTRATION, **changes}, sort_keys=False))
    return path


def test_files_are_read_relative_to_the_config(tmp_path):
    write(tmp_path / "irc.yaml")
    registry = load_registry(make_test_config(app_service_config_files=["irc.yaml"], config_dir=str(tmp_path)))
    assert [s.id for s in registry.services] == ["irc"]
    assert registry.by_token("a1").sender == "@ircbot:test.local"


def test_a_bad_regex_names_the_file_and_line(tmp_path):
    path = write(tmp_path / "irc.yaml", namespaces={"users": [{"exclusive": True, "regex": "@_irc_(.*"}]})
    with pytest.raises(ConfigError) as err:
        load_registry(make_test_config(app_service_config_files=[str(path)]))
    assert f"{path}, line 9:" in str(err.value) and "not a valid regular expression" in str(err.value)


def test_a_token_used_twice_is_refused(tmp_path):
    first = write(tmp_path / "a.yaml")
    second = write(tmp_path / "b.yaml", id="other", hs_token="h2")
    with pytest.raises(ConfigError, match=f"{second}: the same as_token as {first}"):
        load_registry(make_test_config(app_service_config_files=[str(first), str(second)]))


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read .*nowhere.yaml"):
        load_registry(make_test_config(app_service_config_files=[str(tmp_path / "nowhere.yaml")]))


def test_chatgo_run_refuses_a_bad_registration(tmp_path):
    config_path, _, _ = generate(tmp_path)
    bad = write(config_path.parent / "bridge.yaml", url="not a url")
    config = yaml.safe_load(config_path.read_text())
    config["app_service_config_files"] = ["bridge.yaml"]
    config_path.write_text(yaml.safe_dump(config))
    result = chatgo("run", "-c", str(config_path), timeout=60)
    assert result.returncode != 0
    assert f"config error: app_service_config_files: {bad}, line 2: 'url' must be an http:// or https://" \
        in result.stderr, result.stderr
    assert not (config_path.parent / "postgres").exists()  # refused before anything started
