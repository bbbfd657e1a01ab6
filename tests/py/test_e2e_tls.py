"""TLS: HTTPS and WSS served by the router (Bun's BoringSSL), client certificates, and clear
errors for bad certificate files. Certificates come from trustme, made fresh per test run."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trustme
from conftest import APPS
from websockets.sync.client import connect


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def certs(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("certs")
    server = ca.issue_cert("localhost", "127.0.0.1")
    paths = {
        "ca": directory / "ca.pem",
        "cert": directory / "cert.pem",
        "key": directory / "key.pem",
        "client": directory / "client.pem",
        "other_client": directory / "other-client.pem",
        "encrypted_key": directory / "encrypted-key.pem",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    ca.issue_cert("client@example.com").private_key_and_cert_chain_pem.write_to_path(
        str(paths["client"])
    )
    trustme.CA().issue_cert("intruder").private_key_and_cert_chain_pem.write_to_path(
        str(paths["other_client"])
    )
    # The same key, encrypted with a password (PKCS#8 PEM).
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), None)
    paths["encrypted_key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    return paths


def tls_args(certs: dict[str, Path], *extra: str) -> list[str]:
    return ["--ssl-certfile", str(certs["cert"]), "--ssl-keyfile", str(certs["key"]), *extra]


def client_context(certs: dict[str, Path], client: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    if client is not None:
        context.load_cert_chain(str(certs[client]))
    return context


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "saltare", "echo_scope:app", "--app-dir", str(APPS), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_https_is_served_and_the_scope_says_https(serve, certs):
    server = serve("echo_scope:app", *tls_args(certs))
    assert server.url.startswith("https://")
    response = httpx.get(server.url + "/secure?x=1", verify=client_context(certs))
    assert response.status_code == 200
    scope = response.json()
    assert scope["scheme"] == "https"
    assert scope["query_string"] == "x=1"


def test_wss_is_served(serve, certs):
    server = serve("ws_app:app", *tls_args(certs))
    url = server.url.replace("https://", "wss://") + "/scope"
    with connect(url, ssl=client_context(certs)) as ws:
        scope = json.loads(ws.recv())
    assert scope["scheme"] == "wss"


def test_plain_http_to_a_tls_port_gets_nothing_useful(serve, certs):
    server = serve("echo_scope:app", *tls_args(certs))
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url.replace("https://", "http://") + "/", timeout=5)
    # The server is unharmed.
    assert httpx.get(server.url + "/", verify=client_context(certs)).status_code == 200


def test_an_encrypted_key_with_its_password(serve, certs):
    server = serve(
        "echo_scope:app",
        "--ssl-certfile",
        str(certs["cert"]),
        "--ssl-keyfile",
        str(certs["encrypted_key"]),
        "--ssl-keyfile-password",
        "s3cret",
    )
    assert httpx.get(server.url + "/", verify=client_context(certs)).status_code == 200


def test_client_certificates_required(serve, certs):
    server = serve(
        "echo_scope:app",
        *tls_args(certs, "--ssl-ca-certs", str(certs["ca"]), "--ssl-cert-reqs", "required"),
    )
    good = httpx.get(server.url + "/", verify=client_context(certs, "client"))
    assert good.status_code == 200
    for client in (None, "other_client"):
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + "/", verify=client_context(certs, client), timeout=5)


def test_client_certificates_optional(serve, certs):
    server = serve(
        "echo_scope:app",
        *tls_args(certs, "--ssl-ca-certs", str(certs["ca"]), "--ssl-cert-reqs", "optional"),
    )
    assert httpx.get(server.url + "/", verify=client_context(certs)).status_code == 200
    assert httpx.get(server.url + "/", verify=client_context(certs, "client")).status_code == 200
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url + "/", verify=client_context(certs, "other_client"), timeout=5)


def test_minimum_tls_version(serve, certs):
    server = serve("echo_scope:app", *tls_args(certs, "--ssl-min-version", "1.3"))
    old = client_context(certs)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url + "/", verify=old, timeout=5)
    assert httpx.get(server.url + "/", verify=client_context(certs)).status_code == 200


def test_certfile_without_keyfile_is_a_one_line_error(certs):
    result = run_cli("--ssl-certfile", str(certs["cert"]))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--ssl-certfile and --ssl-keyfile must be given together" in lines[0]


def test_a_key_that_does_not_match_the_certificate_is_refused(certs, ca):
    other = ca.issue_cert("other.example")
    other_key = certs["key"].with_name("other-key.pem")
    other.private_key_pem.write_to_path(str(other_key))
    result = run_cli("--ssl-certfile", str(certs["cert"]), "--ssl-keyfile", str(other_key))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--ssl-keyfile" in result.stderr
    assert str(other_key) in result.stderr


def test_a_wrong_key_password_and_a_missing_file_are_refused(certs):
    wrong = run_cli(
        "--ssl-certfile",
        str(certs["cert"]),
        "--ssl-keyfile",
        str(certs["encrypted_key"]),
        "--ssl-keyfile-password",
        "nope",
    )
    assert wrong.returncode == 2
    assert "--ssl-keyfile" in wrong.stderr
    missing = run_cli("--ssl-certfile", "/nonexistent.pem", "--ssl-keyfile", str(certs["key"]))
    assert missing.returncode == 2
    assert "/nonexistent.pem" in missing.stderr


def test_client_certificate_options_need_a_ca(certs):
    result = run_cli(*tls_args(certs, "--ssl-cert-reqs", "required"))
    assert result.returncode == 2
    assert "--ssl-ca-certs" in result.stderr


def test_the_tls_scope_extension(serve, certs):
    server = serve(
        "tls_app:app",
        *tls_args(certs, "--ssl-ca-certs", str(certs["ca"]), "--ssl-cert-reqs", "optional"),
    )
    anonymous = httpx.get(server.url + "/", verify=client_context(certs)).json()
    tls = anonymous["tls"]
    assert tls["tls_version"] == 0x0304
    assert tls["cipher_suite"] in (0x1301, 0x1302, 0x1303)
    assert tls["server_cert"] == certs["cert"].read_text().strip() + "\n"
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_name"] is None
    # The router's ":tls-*" pairs never show up as headers.
    assert not any(name.startswith(":") for name in anonymous["header_names"])
    with_cert = httpx.get(server.url + "/", verify=client_context(certs, "client")).json()["tls"]
    assert len(with_cert["client_cert_chain"]) == 1
    sent = ssl.PEM_cert_to_DER_cert(with_cert["client_cert_chain"][0])
    expected = certs["client"].read_text().split("-----BEGIN CERTIFICATE-----")[1]
    assert sent == ssl.PEM_cert_to_DER_cert("-----BEGIN CERTIFICATE-----" + expected)
    # trustme's subject is O=trustme..., OU=Testing cert...; RFC 4514 lists the last RDN first.
    name = with_cert["client_cert_name"]
    assert name.startswith("OU=Testing cert ")
    assert name.endswith(",O=trustme v1.2.1")
    assert with_cert["client_cert_error"] is None
    # HTTP/2 streams carry it too.
    with httpx.Client(http2=True, verify=client_context(certs)) as client:
        over_h2 = client.get(server.url + "/").json()
    assert over_h2["http_version"] == "2"
    assert over_h2["tls"]["tls_version"] == 0x0304


def test_no_tls_extension_without_tls(serve):
    server = serve("tls_app:app")
    assert httpx.get(server.url + "/").json()["tls"] is None
