"""The one table of saltare's options.

Every option is defined here once: its name (the Python keyword of ``saltare.run``), type,
default, validation, command-line flag, ``SALTARE_*`` environment variable and help text. The
CLI, ``run()`` and the router all take their options from this table; the router receives the
validated values as JSON and trusts them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OPTIONS", "ConfigError", "Option", "resolve"]


class ConfigError(ValueError):
    """A bad option value; the message names the option and what is allowed."""

    code = "BAD_OPTION"


@dataclass(frozen=True)
class Option:
    name: str
    kind: str  # "str" | "int" | "float" | "bool" | "choice" | "size" | "mode" | "list"
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "SALTARE_" + self.name.upper()

    def allowed(self) -> str:
        """Describe the allowed values, for error messages and --help."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "mode":
            return "an octal file mode such as 660 or 0o600"
        if self.kind == "list":
            return "a list of strings (repeat the flag, or separate with commas)"
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        kind = {"int": "an integer", "float": "a number", "size": "a size in bytes"}.get(
            self.kind, "a string"
        )
        return kind + (" " + " and ".join(bounds) if bounds else "")


def _check_root_path(value: str) -> str | None:
    if value and (not value.startswith("/") or value.endswith("/")):
        return "a path starting with '/' and not ending with '/' (or empty)"
    return None


def _check_url_path(value: str | None) -> str | None:
    if value is not None and (not value.startswith("/") or "?" in value or "#" in value):
        return "a path starting with '/' without query or fragment"
    return None


def _check_paths(value: tuple[str, ...]) -> str | None:
    for item in value:
        if _check_url_path(item):
            return "paths starting with '/' without query or fragment"
    return None


def _check_allow_ips(value: str) -> str | None:
    """``*`` or a comma list of IP addresses and CIDR networks (the router matches them)."""
    import ipaddress  # noqa: PLC0415 - only needed while validating

    items = [item.strip() for item in value.split(",")]
    if items == ["*"]:
        return None
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return "'*' or a comma-separated list of IP addresses and CIDR networks"
    return None


_SIZE_SUFFIXES = {
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
}

OPTIONS: tuple[Option, ...] = (
    Option("host", "str", "127.0.0.1", "Address to listen on.", metavar="ADDR"),
    Option("port", "int", 8000, "TCP port to listen on (0 picks a free port).", 0, 65535),
    Option("uds", "str", None, "Listen on this Unix socket path instead of TCP.", metavar="PATH"),
    Option(
        "uds_permissions",
        "mode",
        None,
        "File mode of the --uds socket, in octal (e.g. 660); default: as the umask allows.",
        0,
        0o777,
        metavar="MODE",
    ),
    Option(
        "fd",
        "int",
        None,
        "Serve on this inherited listening socket (file descriptor) instead of binding one. "
        "Without it, a socket passed by systemd socket activation (LISTEN_FDS) is used.",
        0,
        2**31 - 1,
    ),
    Option(
        "app_dir",
        "str",
        ".",
        "Directory put first on sys.path before importing the app.",
        metavar="DIR",
    ),
    Option("factory", "bool", False, "Treat MODULE:ATTR as a callable that returns the app."),
    Option(
        "root_path",
        "str",
        "",
        "ASGI root_path for an app mounted below a path prefix (e.g. /api).",
        metavar="PATH",
        check=_check_root_path,
    ),
    Option(
        "python",
        "str",
        None,
        "Python interpreter that runs the app (default: the one running saltare).",
        metavar="PATH",
    ),
    Option(
        "workers",
        "int",
        1,
        "Number of worker processes (0 = number of CPUs).",
        0,
        512,
    ),
    Option(
        "max_requests",
        "int",
        0,
        "Recycle a worker after this many requests and WebSocket messages (0 = never).",
        0,
        2**31,
    ),
    Option(
        "max_requests_jitter",
        "int",
        0,
        "Add a random 0..N to --max-requests per worker, so workers do not recycle together.",
        0,
        2**31,
    ),
    Option(
        "max_worker_memory",
        "int",
        0,
        "Recycle a worker whose memory (Pss, MiB, sampled every 5 s) exceeds this (0 = never).",
        0,
        2**20,
    ),
    Option(
        "reload",
        "bool",
        False,
        "Development: restart the Python side when a .py file under --app-dir changes.",
    ),
    Option(
        "loop",
        "choice",
        "auto",
        "Event loop of the workers: uvloop if installed (auto), or asyncio.",
        choices=("auto", "asyncio", "uvloop"),
    ),
    Option(
        "router_jit",
        "choice",
        "baseline",
        "JIT tiers of the router's JavaScript engine: baseline saves ~13 MiB under load "
        "for ~15 percent of raw router throughput; full is fastest; off is leanest (README).",
        choices=("baseline", "full", "off"),
    ),
    Option(
        "lifespan",
        "choice",
        "auto",
        "Run the ASGI lifespan protocol: auto tolerates apps without it.",
        choices=("auto", "on", "off"),
    ),
    Option(
        "log_level",
        "choice",
        "info",
        "Log level of the server's own messages.",
        choices=("critical", "error", "warning", "info", "debug", "trace"),
    ),
    Option(
        "log_format",
        "choice",
        "text",
        "Format of the server's own log lines: text (LEVEL: message) or json (one object "
        "per line).",
        choices=("text", "json"),
    ),
    Option(
        "access_log",
        "bool",
        False,
        "Write one JSON line per completed request to stderr.",
    ),
    Option(
        "access_log_exclude",
        "list",
        (),
        "Leave requests for this exact path out of the access log (repeatable).",
        metavar="PATH",
        check=_check_paths,
    ),
    Option(
        "metrics_path",
        "str",
        None,
        "Answer this path with Prometheus metrics from the router (the app never sees it).",
        metavar="PATH",
        check=_check_url_path,
    ),
    Option(
        "health_path",
        "str",
        None,
        "Answer this path from the router: 200 while a worker is ready, 503 otherwise "
        "and while draining.",
        metavar="PATH",
        check=_check_url_path,
    ),
    Option(
        "proxy_headers",
        "bool",
        False,
        "Take the client address and scheme from X-Forwarded-For/-Proto or Forwarded when "
        "the peer is in --forwarded-allow-ips.",
    ),
    Option(
        "forwarded_allow_ips",
        "str",
        "127.0.0.1",
        "Peers trusted for proxy headers and the PROXY protocol: comma-separated IPs and "
        "CIDR networks, or * for all.",
        metavar="IPS",
        check=_check_allow_ips,
    ),
    Option(
        "proxy_protocol",
        "bool",
        False,
        "Expect a PROXY protocol v1/v2 header at the start of connections from trusted peers.",
    ),
    Option(
        "ssl_certfile",
        "str",
        None,
        "TLS certificate chain (PEM); serves HTTPS/WSS. Needs --ssl-keyfile.",
        metavar="FILE",
    ),
    Option("ssl_keyfile", "str", None, "TLS private key (PEM).", metavar="FILE"),
    Option(
        "ssl_keyfile_password",
        "str",
        None,
        "Password of an encrypted --ssl-keyfile.",
        metavar="PASSWORD",
    ),
    Option(
        "ssl_ca_certs",
        "str",
        None,
        "CA certificates (PEM) that client certificates must chain to (mTLS).",
        metavar="FILE",
    ),
    Option(
        "ssl_cert_reqs",
        "choice",
        "none",
        "Client certificates: none, optional (verified when sent), required.",
        choices=("none", "optional", "required"),
    ),
    Option(
        "ssl_min_version",
        "choice",
        "1.2",
        "Oldest TLS version accepted (1.0 and 1.1 are never offered, RFC 8996).",
        choices=("1.2", "1.3"),
    ),
    Option(
        "ssl_ciphers",
        "str",
        None,
        "TLS 1.2 cipher list in OpenSSL syntax (default: BoringSSL's).",
        metavar="LIST",
    ),
    Option(
        "http2",
        "bool",
        True,
        "Serve HTTP/2: over TLS when the client offers h2 (ALPN), and in clear text to clients "
        "that start with the HTTP/2 preface (prior knowledge).",
    ),
    Option(
        "http2_max_concurrent_streams",
        "int",
        100,
        "Streams one HTTP/2 client may have open at once (more are refused).",
        1,
        10_000,
    ),
    Option(
        "keep_alive_timeout",
        "float",
        5.0,
        "Seconds an idle keep-alive connection is kept open.",
        0.1,
        3600,
    ),
    Option(
        "header_timeout",
        "float",
        5.0,
        "Seconds allowed from connection (or previous response) to complete request headers.",
        0.1,
        3600,
    ),
    Option(
        "body_timeout",
        "float",
        30.0,
        "Seconds a client gets to send a request body once the server is ready to read it.",
        0.1,
        3600,
    ),
    Option(
        "write_timeout",
        "float",
        30.0,
        "Seconds a response may wait on a client that does not read before the connection "
        "is closed (reset by every bit of progress).",
        0.1,
        3600,
    ),
    Option(
        "max_request_body",
        "size",
        1024 * 1024,
        "Largest request body in bytes (suffixes k, m, g); larger gets 413.",
        0,
        2**53,
    ),
    Option(
        "max_concurrent_connections",
        "int",
        1024,
        "Connections held open at once; more are accepted and closed at once.",
        1,
        1_000_000,
    ),
    Option(
        "max_keepalive_requests",
        "int",
        1000,
        "Requests served on one connection before it is closed (0 = unlimited).",
        0,
        2**31,
    ),
    Option(
        "ws_max_size",
        "size",
        16 * 1024 * 1024,
        "Largest WebSocket message in bytes (after decompression); larger closes with 1009.",
        1,
        2**31 - 1,
    ),
    Option(
        "ws_keepalive_timeout",
        "float",
        20.0,
        "Seconds between WebSocket pings; a peer silent for twice as long is closed (0 = off).",
        0,
        3600,
    ),
    Option(
        "ws_per_message_deflate",
        "bool",
        True,
        "Offer permessage-deflate compression (RFC 7692) to WebSocket clients.",
    ),
    Option(
        "shutdown_timeout",
        "float",
        30.0,
        "Seconds in-flight requests get to finish on SIGTERM/SIGINT.",
        0,
        3600,
    ),
)

_BY_NAME = {o.name: o for o in OPTIONS}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(opt: Option, value: Any) -> Any:
    """Convert a value (from the CLI, the environment or Python) and validate it."""
    if value is None and opt.default is None:
        return None
    try:
        if opt.kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if opt.kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            result: Any = int(value)
        elif opt.kind == "size":
            result = _parse_size(value)
        elif opt.kind == "float":
            if isinstance(value, bool):
                raise ValueError
            result = float(value)
            if math.isnan(result) or math.isinf(result):
                raise ValueError
        elif opt.kind == "mode":
            result = _parse_mode(value)
        elif opt.kind == "list":
            result = _parse_list(value)
        elif opt.kind == "choice":
            result = str(value).lower()
            if result not in opt.choices:
                raise ValueError
        else:
            if not isinstance(value, (str, os.PathLike)):
                raise ValueError
            result = os.fspath(value)
            if "\0" in result:
                raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(
            f"invalid value for {opt.flag} ({opt.name}): {value!r}; expected {opt.allowed()}"
        ) from None
    if opt.minimum is not None and result < opt.minimum:
        raise ConfigError(
            f"invalid value for {opt.flag} ({opt.name}): {value!r}; expected {opt.allowed()}"
        )
    if opt.maximum is not None and result > opt.maximum:
        raise ConfigError(
            f"invalid value for {opt.flag} ({opt.name}): {value!r}; expected {opt.allowed()}"
        )
    if opt.check is not None:
        problem = opt.check(result)
        if problem:
            raise ConfigError(
                f"invalid value for {opt.flag} ({opt.name}): {value!r}; expected {problem}"
            )
    return result


def _parse_mode(value: Any) -> int:
    # An int from Python is taken as the mode itself (0o660); text is always octal.
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    text = str(value).strip().lower().removeprefix("0o")
    if not text or any(c not in "01234567" for c in text):
        raise ValueError
    return int(text, 8)


def _parse_list(value: Any) -> tuple[str, ...]:
    # From the environment or a single string: comma-separated; from Python or a repeated
    # flag: a list whose items may themselves hold commas.
    items = [value] if isinstance(value, str) else list(value)
    result: list[str] = []
    for item in items:
        if not isinstance(item, str) or "\0" in item:
            raise ValueError
        result.extend(part.strip() for part in item.split(",") if part.strip())
    return tuple(result)


def _parse_size(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    for suffix in sorted(_SIZE_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * _SIZE_SUFFIXES[suffix])
    return int(text)


def _check_tls(config: dict[str, Any]) -> None:
    """Options that only make sense together, and TLS files that must load (one-line errors)."""
    import ssl  # noqa: PLC0415 - only when TLS is configured

    cert, key = config["ssl_certfile"], config["ssl_keyfile"]
    if (cert is None) != (key is None):
        raise ConfigError("--ssl-certfile and --ssl-keyfile must be given together")
    if cert is None:
        for name in ("ssl_keyfile_password", "ssl_ca_certs", "ssl_ciphers"):
            if config[name] is not None:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} needs --ssl-certfile and --ssl-keyfile")
        if config["ssl_cert_reqs"] != "none":
            raise ConfigError("--ssl-cert-reqs needs --ssl-certfile and --ssl-keyfile")
        return
    if config["uds"] is not None:
        raise ConfigError("--ssl-certfile cannot be used with --uds (terminate TLS in front)")
    if config["proxy_protocol"]:
        # The PROXY header precedes the TLS handshake, and Bun's TLS layer reads those bytes
        # before the router sees them.
        raise ConfigError("--proxy-protocol cannot be used with --ssl-certfile")
    for flag, path in (("--ssl-certfile", cert), ("--ssl-keyfile", key)):
        if not os.path.isfile(path):
            raise ConfigError(f"invalid value for {flag}: {path!r} is not a readable file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, config["ssl_keyfile_password"])
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        raise ConfigError(
            f"invalid value for --ssl-keyfile: cannot load {key!r} with certificate {cert!r}: "
            f"{reason} (wrong key, wrong password, or not PEM)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"invalid value for --ssl-certfile: {exc}") from None
    if config["ssl_ciphers"] is not None:
        try:
            context.set_ciphers(config["ssl_ciphers"])
        except ssl.SSLError:
            raise ConfigError(
                f"invalid value for --ssl-ciphers: {config['ssl_ciphers']!r} names no cipher"
            ) from None
    ca = config["ssl_ca_certs"]
    if ca is not None:
        try:
            context.load_verify_locations(cafile=ca)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"invalid value for --ssl-ca-certs: cannot load {ca!r}: {exc}"
            ) from None
    if config["ssl_cert_reqs"] != "none" and ca is None:
        raise ConfigError("--ssl-cert-reqs optional/required needs --ssl-ca-certs")


def resolve(given: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Merge defaults < ``SALTARE_*`` environment < given values, validating every one.

    Unknown names in ``given`` raise ConfigError listing the known ones.
    """
    unknown = sorted(set(given) - set(_BY_NAME))
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r}; known options: " + ", ".join(sorted(_BY_NAME))
        )
    env = os.environ if environ is None else environ
    resolved: dict[str, Any] = {}
    for opt in OPTIONS:
        if opt.name in given:
            resolved[opt.name] = _convert(opt, given[opt.name])
        elif opt.env in env:
            resolved[opt.name] = _convert(opt, env[opt.env])
        else:
            resolved[opt.name] = opt.default
    _check_tls(resolved)
    return resolved
