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


def test_list_options_take_repeats_from_python_and_commas_from_the_environment() -> None:
    given = resolve({"access_log_exclude": ["/a", "/b,/c"]}, environ={})
    assert given["access_log_exclude"] == ("/a", "/b", "/c")
    env = resolve({}, environ={"SALTARE_ACCESS_LOG_EXCLUDE": "/x, /y"})
    assert env["access_log_exclude"] == ("/x", "/y")
    assert resolve({}, environ={})["access_log_exclude"] == ()


def test_a_repeated_flag_builds_the_list() -> None:
    from saltare._cli import _build_parser  # noqa: PLC0415

    args = _build_parser().parse_args(
        ["m:app", "--access-log-exclude", "/a", "--access-log-exclude", "/b"]
    )
    assert resolve({"access_log_exclude": args.access_log_exclude}, environ={})[
        "access_log_exclude"
    ] == ("/a", "/b")


@pytest.mark.parametrize(("value", "mode"), [("660", 0o660), ("0o600", 0o600), (0o640, 0o640)])
def test_socket_permissions_are_octal(value: object, mode: int) -> None:
    assert resolve({"uds_permissions": value}, environ={})["uds_permissions"] == mode


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("uds_permissions", "rw-", r"--uds-permissions .*octal file mode"),
        ("uds_permissions", "1777", r"--uds-permissions .*octal file mode"),
        ("forwarded_allow_ips", "localhost", r"--forwarded-allow-ips .*CIDR"),
        ("forwarded_allow_ips", "10.0.0.0/33", r"--forwarded-allow-ips .*CIDR"),
        ("metrics_path", "metrics", r"--metrics-path .*starting with '/'"),
        ("health_path", "/h?x", r"--health-path .*without query"),
        ("access_log_exclude", ["ok/"], r"--access-log-exclude .*paths starting with '/'"),
        ("log_format", "xml", r"--log-format .*one of text, json"),
    ],
)
def test_bad_operational_values_are_refused(name: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        resolve({name: value}, environ={})


def test_trust_lists_accept_networks_of_both_families_and_star() -> None:
    value = "127.0.0.1, 10.0.0.0/8,::1,fd00::/8"
    assert resolve({"forwarded_allow_ips": value}, environ={})["forwarded_allow_ips"] == value
    assert resolve({"forwarded_allow_ips": "*"}, environ={})["forwarded_allow_ips"] == "*"


def test_socket_activation_is_only_for_the_process_it_names() -> None:
    import os  # noqa: PLC0415

    from saltare._listen import systemd_listen_fd  # noqa: PLC0415

    mine = str(os.getpid())
    assert systemd_listen_fd({"LISTEN_PID": mine, "LISTEN_FDS": "1"}) == 3
    assert systemd_listen_fd({"LISTEN_PID": "1", "LISTEN_FDS": "1"}) is None
    assert systemd_listen_fd({"LISTEN_PID": mine, "LISTEN_FDS": "0"}) is None
    assert systemd_listen_fd({}) is None


def test_proxy_protocol_and_tls_are_refused_together(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="--proxy-protocol cannot be used with --ssl-certfile"):
        resolve(
            {"proxy_protocol": True, "ssl_certfile": str(cert), "ssl_keyfile": str(cert)},
            environ={},
        )
