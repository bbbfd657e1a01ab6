"""The option table: validation messages, precedence, and documentation coverage."""

from __future__ import annotations

from pathlib import Path

import pytest
from saltare._options import OPTIONS, ConfigError, resolve

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_defaults_match_the_reference_values() -> None:
    config = resolve({}, environ={})
    assert config["host"] == "127.0.0.1"
    assert config["port"] == 8000
    assert config["workers"] == 1
    assert config["keep_alive_timeout"] == 5.0
    assert config["header_timeout"] == 5.0
    assert config["max_request_body"] == 1024 * 1024
    assert config["max_concurrent_connections"] == 1024
    assert config["max_keepalive_requests"] == 1000
    assert config["shutdown_timeout"] == 30.0


def test_an_unknown_option_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'prot'.*known options: .*port"):
        resolve({"prot": 1}, environ={})


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("port", "abc", r"--port \(port\): 'abc'; expected an integer >= 0 and <= 65535"),
        ("port", 70000, r"--port .*<= 65535"),
        ("workers", -1, r"--workers .*>= 0"),
        ("log_level", "loud", r"--log-level .*one of critical, error, warning, info"),
        ("keep_alive_timeout", "nan", r"--keep-alive-timeout .*a number"),
        ("factory", "maybe", r"--factory .*true or false"),
        ("root_path", "api/", r"--root-path .*starting with '/'"),
        ("max_request_body", "lots", r"--max-request-body .*a size in bytes"),
    ],
)
def test_a_bad_value_names_the_option_and_what_is_allowed(
    name: str, value: object, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        resolve({name: value}, environ={})


def test_sizes_accept_suffixes() -> None:
    assert resolve({"max_request_body": "300m"}, environ={})["max_request_body"] == 300 * 2**20
    assert resolve({"max_request_body": "64k"}, environ={})["max_request_body"] == 65536


def test_environment_variables_apply_unless_an_option_is_given() -> None:
    env = {"SALTARE_PORT": "9001", "SALTARE_WORKERS": "3"}
    config = resolve({"workers": 2}, environ=env)
    assert config["port"] == 9001
    assert config["workers"] == 2


def test_a_bad_environment_value_is_refused_like_a_flag() -> None:
    with pytest.raises(ConfigError, match="--port"):
        resolve({}, environ={"SALTARE_PORT": "eighty"})


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_the_readme_documents_every_option(option: object) -> None:
    assert f"`{option.flag}" in README  # type: ignore[attr-defined]
