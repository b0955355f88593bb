"""`OpenAIEmbedder` against a real local HTTP server speaking the ``/v1/embeddings`` wire format."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from memory.embedding import (
    EmbedderUnavailable,
    EmbeddingRejected,
    HashingEmbedder,
    InvalidEmbedding,
    OpenAIEmbedder,
    embed_checked,
)

DIMS = 16
KEY = "sk-test-0123456789abcdef"
REFERENCE = HashingEmbedder(dims=DIMS)
TEXTS = ["Ada prefers green tea", "the invoice page is empty", "Bob moved to Porto"]


def _item(i: int, vector: np.ndarray, encoding: str) -> dict[str, Any]:
    if encoding == "base64":
        payload: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode()
    else:
        payload = [float(x) for x in vector]
    return {"object": "embedding", "index": i, "embedding": payload}


def wire_server(
    scale: float = 1.0, dims: int = DIMS, reverse: bool = False
) -> Callable[[Request], Response]:
    """Answer like OpenAI: vectors of the hashing embedder, in the encoding the client asked."""

    def handle(request: Request) -> Response:
        body = json.loads(request.get_data())
        texts = body["input"]
        vectors = HashingEmbedder(dims=dims).embed_sync(texts) * scale
        items = [_item(i, v, body.get("encoding_format", "float")) for i, v in enumerate(vectors)]
        response = {
            "object": "list",
            "data": items[::-1] if reverse else items,
            "model": body["model"],
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }
        return Response(json.dumps(response), content_type="application/json")

    return handle


def embedder(server: HTTPServer, **kw: Any) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        "test-embed", dims=DIMS, api_key=KEY, base_url=server.url_for("/v1"), **kw
    )


def bodies(server: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(request.get_data()) for request, _ in server.log]


@pytest.mark.parametrize("encoding", ["float", "base64"])
async def test_vectors_arrive_in_either_encoding(httpserver: HTTPServer, encoding: str) -> None:
    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(wire_server())
    got = await embed_checked(embedder(httpserver, encoding_format=encoding), TEXTS)
    np.testing.assert_allclose(got, REFERENCE.embed_sync(TEXTS), atol=1e-6)
    [body] = bodies(httpserver)
    assert body == {"model": "test-embed", "input": TEXTS, "encoding_format": encoding}
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == f"Bearer {KEY}"


async def test_base64_is_asked_for_by_default_and_floats_are_read_anyway(
    httpserver: HTTPServer,
) -> None:
    def floats_always(request: Request) -> Response:
        body = json.loads(request.get_data())
        body["encoding_format"] = "float"
        return wire_server()(Request.from_values(data=json.dumps(body)))

    httpserver.expect_request("/v1/embeddings").respond_with_handler(floats_always)
    got = await embed_checked(embedder(httpserver), TEXTS)
    assert bodies(httpserver)[0]["encoding_format"] == "base64"
    np.testing.assert_allclose(got, REFERENCE.embed_sync(TEXTS), atol=1e-6)


async def test_batches_keep_order_and_items_are_placed_by_index(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_handler(wire_server(reverse=True))
    texts = [f"note number {i} about project {i % 3}" for i in range(5)]
    got = await embed_checked(embedder(httpserver, batch_size=2), texts)
    assert [len(b["input"]) for b in bodies(httpserver)] == [2, 2, 1]
    np.testing.assert_allclose(got, REFERENCE.embed_sync(texts), atol=1e-6)


async def test_unnormalised_vectors_are_scaled_to_unit_length(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_handler(wire_server(scale=7.5))
    got = await embed_checked(embedder(httpserver, encoding_format="float"), TEXTS)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


async def test_dimensions_are_sent_only_when_asked(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_handler(wire_server())
    await embed_checked(embedder(httpserver, request_dims=True), TEXTS[:1])
    await embed_checked(embedder(httpserver), TEXTS[:1])
    assert [b.get("dimensions") for b in bodies(httpserver)] == [DIMS, None]


async def test_wrong_dims_from_the_server_are_rejected(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_handler(wire_server(dims=DIMS * 2))
    with pytest.raises(
        InvalidEmbedding, match=r"'openai:test-embed' returned vectors of \[32\] dims; 16"
    ):
        await embed_checked(embedder(httpserver), TEXTS)


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": f"bad key {KEY}", "type": "invalid_request_error", "code": code}}
    return Response(
        json.dumps(body), status=status, headers=headers or {}, content_type="application/json"
    )


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_client_errors_are_not_transient(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_response(_error(status, "bad_thing"))
    with pytest.raises(EmbeddingRejected) as info:
        await embed_checked(embedder(httpserver), TEXTS)
    assert info.value.status == status
    assert f"HTTP {status}, code bad_thing" in str(info.value)
    assert "test-embed" in str(info.value)
    assert KEY not in str(info.value) and "bad key" not in str(info.value)


@pytest.mark.parametrize("status", [408, 429, 500, 503])
async def test_server_errors_and_rate_limits_are_transient(
    httpserver: HTTPServer, status: int
) -> None:
    response = _error(status, "overloaded")
    httpserver.expect_request("/v1/embeddings").respond_with_response(response)
    with pytest.raises(EmbedderUnavailable) as info:
        await embed_checked(embedder(httpserver), TEXTS)
    assert f"HTTP {status}" in str(info.value) and KEY not in str(info.value)


async def test_the_providers_should_retry_hint_wins(httpserver: HTTPServer) -> None:
    response = _error(429, "insufficient_quota", {"x-should-retry": "false"})
    httpserver.expect_request("/v1/embeddings").respond_with_response(response)
    with pytest.raises(EmbeddingRejected, match="insufficient_quota"):
        await embed_checked(embedder(httpserver), TEXTS)


async def test_no_connection_is_transient(httpserver: HTTPServer) -> None:
    url = httpserver.url_for("/v1")
    httpserver.stop()
    try:
        closed = OpenAIEmbedder("test-embed", dims=DIMS, api_key=KEY, base_url=url)
        with pytest.raises(EmbedderUnavailable, match="cannot connect to localhost"):
            await embed_checked(closed, TEXTS)
    finally:
        httpserver.start()
