"""Payload encryption (cairn.codec) and the remote codec server (cairn.codec_server)."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator

import httpx
import pytest
from google.protobuf import json_format
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.exceptions import ApplicationError

from activities.failures import CairnFailureConverter
from cairn.codec import (
    ENCODING,
    KEY_ID_METADATA_KEY,
    DecryptionError,
    EncryptionCodec,
    UnknownKeyIdError,
    data_converter_with_codec,
    keys_from_env_value,
)
from cairn.codec_server import CodecServer, serve_codec

K1 = os.urandom(32)
K2 = os.urandom(32)
TOKEN = "codec-test-token-5f2c"
UI_ORIGIN = "http://localhost:8080"


class Note(BaseModel):
    author: str
    text: str


def key_renderings(key: bytes) -> list[str]:
    """Every way a key could leak into a message."""
    return [
        base64.b64encode(key).decode(),
        base64.urlsafe_b64encode(key).decode(),
        key.hex(),
        repr(key),
    ]


def plain_payload(text: str = "the launch code is 0000") -> Payload:
    return pydantic_data_converter.payload_converter.to_payload(Note(author="ana", text=text))


# --- codec ---------------------------------------------------------------------------------


async def test_round_trip_hides_the_payload_and_restores_it_exactly() -> None:
    codec = EncryptionCodec({"k1": K1}, "k1")
    original = plain_payload()

    [encrypted] = await codec.encode([original])

    assert encrypted.metadata["encoding"] == ENCODING
    assert encrypted.metadata[KEY_ID_METADATA_KEY] == b"k1"
    assert set(encrypted.metadata) == {"encoding", KEY_ID_METADATA_KEY}
    assert b"launch code" not in encrypted.data
    assert b"json/plain" not in encrypted.data
    assert await codec.decode([encrypted]) == [original]


async def test_each_encryption_uses_a_fresh_nonce() -> None:
    codec = EncryptionCodec({"k1": K1}, "k1")
    first, second = await codec.encode([plain_payload(), plain_payload()])
    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_payloads_that_are_not_encrypted_pass_through() -> None:
    codec = EncryptionCodec({"k1": K1}, "k1")
    original = plain_payload()
    [encrypted] = await codec.encode([original])
    decoded = await codec.decode([original, encrypted])
    assert decoded == [original, original]


async def test_rotation_keeps_old_payloads_readable_and_seals_new_ones_with_the_new_key() -> None:
    before = EncryptionCodec({"k1": K1}, "k1")
    [old] = await before.encode([plain_payload("written before rotation")])

    after = EncryptionCodec({"k2": K2, "k1": K1}, "k2")
    [new] = await after.encode([plain_payload("written after rotation")])

    assert after.active_key_id == "k2"
    assert new.metadata[KEY_ID_METADATA_KEY] == b"k2"
    assert await after.decode([old, new]) == [
        plain_payload("written before rotation"),
        plain_payload("written after rotation"),
    ]
    # A codec that never had k2 cannot read what was sealed after the rotation.
    with pytest.raises(UnknownKeyIdError):
        await before.decode([new])


async def test_unknown_key_id_names_the_id_and_no_key() -> None:
    [sealed] = await EncryptionCodec({"k-retired": K1}, "k-retired").encode([plain_payload()])
    codec = EncryptionCodec({"k2": K2}, "k2")

    with pytest.raises(UnknownKeyIdError) as caught:
        await codec.decode([sealed])

    message = str(caught.value)
    assert caught.value.key_id == "k-retired"
    assert "'k-retired'" in message
    assert "k2" in message  # tells the operator which ids are configured
    for rendering in key_renderings(K1) + key_renderings(K2):
        assert rendering not in message


@pytest.mark.parametrize("offset", [0, 12, -1], ids=["nonce", "ciphertext", "tag"])
async def test_tampered_ciphertext_is_refused(offset: int) -> None:
    codec = EncryptionCodec({"k1": K1}, "k1")
    [sealed] = await codec.encode([plain_payload()])
    data = bytearray(sealed.data)
    data[offset] ^= 0x01
    tampered = Payload(metadata=dict(sealed.metadata), data=bytes(data))

    with pytest.raises(DecryptionError, match="authentication failed") as caught:
        await codec.decode([tampered])
    assert caught.value.key_id == "k1"


async def test_relabelled_key_id_is_refused_rather_than_decrypted_with_the_wrong_key() -> None:
    codec = EncryptionCodec({"k1": K1, "k2": K1}, "k1")  # same bytes, different ids
    [sealed] = await codec.encode([plain_payload()])
    relabelled = Payload(
        metadata={"encoding": ENCODING, KEY_ID_METADATA_KEY: b"k2"}, data=sealed.data
    )
    with pytest.raises(DecryptionError, match="'k2'"):
        await codec.decode([relabelled])


async def test_truncated_and_unlabelled_payloads_are_refused() -> None:
    codec = EncryptionCodec({"k1": K1}, "k1")
    truncated = Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA_KEY: b"k1"}, data=b"x")
    unlabelled = Payload(metadata={"encoding": ENCODING}, data=b"x" * 64)
    with pytest.raises(DecryptionError, match="truncated"):
        await codec.decode([truncated])
    with pytest.raises(DecryptionError, match="metadata is missing"):
        await codec.decode([unlabelled])


def test_codec_rejects_bad_configuration_without_echoing_keys() -> None:
    short = os.urandom(16)
    with pytest.raises(ValueError, match="must be 32 bytes") as caught:
        EncryptionCodec({"k1": short}, "k1")
    for rendering in key_renderings(short):
        assert rendering not in str(caught.value)
    with pytest.raises(ValueError, match="'k9' is not among"):
        EncryptionCodec({"k1": K1}, "k9")
    with pytest.raises(ValueError, match="at least one"):
        EncryptionCodec({}, "k1")
    assert "k1" in repr(EncryptionCodec({"k1": K1}, "k1"))
    for rendering in key_renderings(K1):
        assert rendering not in repr(EncryptionCodec({"k1": K1}, "k1"))


# --- key list parsing ----------------------------------------------------------------------


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_key_list_parses_and_the_first_key_is_active() -> None:
    keys, active = keys_from_env_value(f" k2:{b64(K2)} , k1:{b64(K1)}\n")
    assert active == "k2"
    assert keys == {"k2": K2, "k1": K1}
    assert list(keys) == ["k2", "k1"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "empty"),
        (" , ", "empty"),
        (b64(K1), "entry 1 is not of the form"),
        (f"k1:{b64(K1)},k2", "entry 2 is not of the form"),
        ("k1:", "entry 1 is not of the form"),
        (f":{b64(K1)}", "entry 1 is not of the form"),
        (f"{b64(K2)[:20]}/+:{b64(K1)}", "entry 1 has an invalid key id"),
        (f"k1:{b64(K1)},k1:{b64(K2)}", "'k1' appears more than once"),
        (f"k1:{b64(K1)[:-2]}!!", "'k1' is not valid base64"),
        (f"k1:{b64(K1[:24])}", "'k1' must be 32 bytes for AES-256, got 24 bytes"),
    ],
)
def test_malformed_key_lists_are_refused_without_echoing_key_material(
    value: str, expected: str
) -> None:
    with pytest.raises(ValueError, match=expected) as caught:
        keys_from_env_value(value)
    message = str(caught.value)
    for rendering in key_renderings(K1) + key_renderings(K2) + [b64(K1)[:20], b64(K2)[:20]]:
        assert rendering not in message


# --- data converter ------------------------------------------------------------------------


def test_without_a_codec_the_plain_pydantic_converter_is_used() -> None:
    converter = data_converter_with_codec(None)
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class
    assert converter.payload_codec is None
    assert isinstance(converter.failure_converter, CairnFailureConverter)


async def test_converter_encrypts_values_and_failure_messages() -> None:
    codec = EncryptionCodec({"k1": K1}, "k1")
    converter = data_converter_with_codec(codec)
    assert converter.payload_codec is codec
    assert isinstance(converter.failure_converter, DefaultFailureConverterWithEncodedAttributes)
    assert isinstance(converter.failure_converter, CairnFailureConverter)
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class

    note = Note(author="ana", text="private findings")
    [payload] = await converter.encode([note])
    assert payload.metadata["encoding"] == ENCODING
    assert await converter.decode([payload], [Note]) == [note]

    failure = Failure()
    await converter.encode_failure(ApplicationError("customer ssn 123-45-6789"), failure)
    assert "123-45-6789" not in failure.message
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    assert b"123-45-6789" not in failure.encoded_attributes.data
    decoded = await converter.decode_failure(failure)
    assert str(decoded) == "customer ssn 123-45-6789"


# --- codec server --------------------------------------------------------------------------


@pytest.fixture
def codec() -> EncryptionCodec:
    return EncryptionCodec({"k2": K2, "k1": K1}, "k2")


@pytest.fixture
def server(codec: EncryptionCodec) -> Iterator[CodecServer]:
    with serve_codec(
        codec, host="127.0.0.1", port=0, token=TOKEN, cors_origins=[UI_ORIGIN]
    ) as running:
        yield running


@pytest.fixture
def http(server: CodecServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def as_json(payloads: list[Payload]) -> dict[str, object]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


def from_json(body: dict[str, list[dict[str, object]]]) -> list[Payload]:
    return [json_format.ParseDict(p, Payload()) for p in body["payloads"]]


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_server_decodes_a_payload_encrypted_by_the_workers(
    codec: EncryptionCodec, http: httpx.Client
) -> None:
    original = plain_payload()
    sealed = await codec.encode([original])

    response = http.post("/decode", json=as_json(sealed), headers=bearer())

    assert response.status_code == 200, response.text
    assert from_json(response.json()) == [original]


async def test_server_encodes_what_the_workers_can_decode(
    codec: EncryptionCodec, http: httpx.Client
) -> None:
    original = plain_payload()

    response = http.post("/default/encode", json=as_json([original]), headers=bearer())

    assert response.status_code == 200, response.text
    [sealed] = from_json(response.json())
    assert sealed.metadata[KEY_ID_METADATA_KEY] == b"k2"
    assert await codec.decode([sealed]) == [original]


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong-token"), bearer(TOKEN + "x"), {"Authorization": f"Basic {TOKEN}"}],
    ids=["no-token", "bad-token", "longer-token", "wrong-scheme"],
)
async def test_server_refuses_requests_without_the_token(
    codec: EncryptionCodec, http: httpx.Client, headers: dict[str, str]
) -> None:
    sealed = await codec.encode([plain_payload()])
    response = http.post("/decode", json=as_json(sealed), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "payloads" not in response.json()


async def test_server_reports_codec_errors_by_key_id(http: httpx.Client) -> None:
    [sealed] = await EncryptionCodec({"k0": os.urandom(32)}, "k0").encode([plain_payload()])
    response = http.post("/decode", json=as_json([sealed]), headers=bearer())
    assert response.status_code == 400
    assert "'k0'" in response.json()["error"]


def test_server_rejects_bodies_that_are_not_payloads(http: httpx.Client) -> None:
    response = http.post(
        "/decode",
        content=b"{not json",
        headers={**bearer(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    wrong_type = http.post(
        "/decode", content=b"{}", headers={**bearer(), "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    assert http.post("/elsewhere", json={}, headers=bearer()).status_code == 404


def test_cors_preflight_answers_only_configured_origins(http: httpx.Client) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = http.options("/decode", headers={**preflight, "Origin": UI_ORIGIN})
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert "authorization" in allowed.headers["Access-Control-Allow-Headers"]
    assert "x-namespace" in allowed.headers["Access-Control-Allow-Headers"]

    other = http.options("/decode", headers={**preflight, "Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_health_endpoint_needs_no_token(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_server_logs_neither_payloads_nor_tokens(
    codec: EncryptionCodec, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cairn.codec_server")
    sealed = await codec.encode([plain_payload("do not log me")])
    assert http.post("/decode", json=as_json(sealed), headers=bearer()).status_code == 200
    assert http.post("/decode", json=as_json(sealed), headers=bearer("nope")).status_code == 401

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "POST /decode 200" in logged
    assert "POST /decode 401" in logged
    for secret in (TOKEN, "nope", "do not log me", base64.b64encode(sealed[0].data).decode()):
        assert secret not in logged


def test_shutdown_closes_the_port_and_is_idempotent(codec: EncryptionCodec) -> None:
    running = serve_codec(codec, port=0, token=TOKEN)
    url = running.url
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    running.shutdown()
    running.shutdown()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=5)


@pytest.mark.parametrize(
    ("token", "origins", "expected"),
    [("", [], "token"), (" padded ", [], "token"), (TOKEN, ["*"], "explicitly")],
)
def test_serve_codec_rejects_unsafe_settings(
    codec: EncryptionCodec, token: str, origins: list[str], expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        serve_codec(codec, port=0, token=token, cors_origins=origins)
