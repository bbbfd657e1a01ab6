"""A FastAPI application served end to end (apps/fastapi_app.py)."""

from __future__ import annotations

import hashlib

import httpx
from rawhttp import RawConnection, request

APP = "fastapi_app:app"


def test_json_get_returns_the_endpoint_result(serve):
    server = serve(APP)
    response = httpx.get(server.url + "/hello")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message": "hello"}


def test_path_and_query_parameters_are_parsed_and_converted(serve):
    server = serve(APP)
    response = httpx.get(server.url + "/items/42", params={"q": "caffè latte", "limit": "3"})
    assert response.status_code == 200
    assert response.json() == {"item_id": 42, "q": "caffè latte", "limit": 3}


def test_a_path_parameter_of_the_wrong_type_gets_422(serve):
    server = serve(APP)
    response = httpx.get(server.url + "/items/not-a-number")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "item_id"]


def test_json_post_is_validated_by_the_pydantic_model(serve):
    server = serve(APP)
    with httpx.Client(base_url=server.url) as client:
        ok = client.post("/items", json={"name": "pen", "price": 1.5, "tags": ["a"]})
        bad = client.post("/items", json={"name": "pen", "price": "free"})
        missing = client.post("/items", json={})
    assert ok.status_code == 200
    assert ok.json() == {"created": {"name": "pen", "price": 1.5, "tags": ["a"]}, "total": 3.0}
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "price"]
    assert missing.status_code == 422
    assert {tuple(e["loc"]) for e in missing.json()["detail"]} == {
        ("body", "name"),
        ("body", "price"),
    }


def test_unknown_route_gets_404(serve):
    server = serve(APP)
    response = httpx.get(server.url + "/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_multipart_form_upload_with_a_file_reaches_the_endpoint_intact(serve):
    server = serve(APP)
    data = bytes(range(256)) * 1000 + b"\r\n--not-a-boundary\r\n"
    response = httpx.post(
        server.url + "/upload",
        files={"file": ("data.bin", data, "application/octet-stream")},
        data={"description": "binary blob"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "filename": "data.bin",
        "content_type": "application/octet-stream",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "description": "binary blob",
    }


def test_streaming_response_arrives_chunked_and_complete(serve):
    server = serve(APP)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/stream?chunks=5"))
        response = conn.read_response()
    assert response.status == 200
    assert response.header("transfer-encoding") == "chunked"
    assert response.header("content-length") is None
    assert response.chunked
    assert response.body == b"".join(f"chunk {i}\n".encode() for i in range(5))


def test_streaming_response_through_httpx_has_chunked_transfer_encoding(serve):
    server = serve(APP)
    with httpx.stream("GET", server.url + "/stream?chunks=3") as response:
        pieces = list(response.iter_bytes())
        assert response.headers["transfer-encoding"] == "chunked"
    assert b"".join(pieces) == b"chunk 0\nchunk 1\nchunk 2\n"


def test_head_returns_the_get_headers_and_no_body(serve):
    server = serve(APP)
    get = httpx.get(server.url + "/page")
    with RawConnection.to(server) as conn:
        conn.send(request("HEAD", "/page", [("Connection", "close")]))
        head = conn.read_response(method="HEAD")
        rest = conn.read_until_eof()
    assert head.status == 200
    assert head.header("content-length") == get.headers["content-length"]
    assert head.header("content-type") == get.headers["content-type"]
    assert rest == b"", "a HEAD response must not carry a body"
