"""Optional AES-256-GCM encryption of Temporal payloads, with key ids so keys can rotate.

Workers and clients that share an :class:`EncryptionCodec` store only ciphertext in Temporal:
workflow inputs, results, signals, memos and (through :func:`data_converter_with_codec`) failure
messages and stack traces. Each encrypted payload names the key that sealed it, so a key can be
replaced as the active one while older keys stay in the map to read existing histories.

Error tree (every message names key ids at most, never key material or payload contents)::

    ValueError
     └── CodecError
          ├── UnknownKeyIdError    a payload names a key id that is not in the key map
          └── DecryptionError      authentication failed: tampered, truncated or wrong key
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from activities.failures import CairnFailureConverter, CairnFailureConverterWithEncodedAttributes

__all__ = [
    "ENCODING",
    "KEY_ID_METADATA_KEY",
    "CodecError",
    "DecryptionError",
    "EncryptionCodec",
    "UnknownKeyIdError",
    "data_converter_with_codec",
    "keys_from_env_value",
]

ENCODING = b"binary/encrypted"
"""Value of the ``encoding`` metadata on encrypted payloads (the samples' convention)."""

KEY_ID_METADATA_KEY = "encryption-key-id"
"""Metadata key naming the key id that sealed a payload."""

KEY_SIZE = 32
NONCE_SIZE = 12
_TAG_SIZE = 16
# Key ids travel in payload metadata and in `id:base64` lists, so they exclude `:` and `,`.
_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


class CodecError(ValueError):
    """Base class for payloads that cannot be decrypted."""


class UnknownKeyIdError(CodecError):
    """A payload was sealed with a key id that is not in the codec's key map."""

    def __init__(self, key_id: str, known: Sequence[str]) -> None:
        self.key_id = key_id
        self.known = tuple(known)
        # The id comes from whoever wrote the history: bound what ends up in logs.
        shown = key_id if len(key_id) <= 64 else key_id[:64] + "..."
        super().__init__(
            f"payload was encrypted with key id {shown!r}, which is not configured "
            f"(configured key ids: {', '.join(self.known)}); add that key to the key list "
            "to read it"
        )


class DecryptionError(CodecError):
    """A payload failed authentication: it was altered, truncated or sealed with another key."""

    def __init__(self, key_id: str | None, reason: str) -> None:
        self.key_id = key_id
        label = "without a key id" if key_id is None else f"with key id {key_id!r}"
        super().__init__(f"cannot decrypt payload {label}: {reason}")


def _check_key_id(key_id: str) -> None:
    if not _KEY_ID_PATTERN.fullmatch(key_id):
        raise ValueError(
            f"invalid encryption key id {key_id!r}: use 1 to 64 letters, digits, '.', '_' or '-'"
        )


def _check_key(key_id: str, key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(
            f"encryption key {key_id!r} must be {KEY_SIZE} bytes for AES-256, got {len(key)} bytes"
        )


class EncryptionCodec(PayloadCodec):
    """Payload codec sealing each payload with AES-256-GCM under the active key.

    The whole serialized payload (data and metadata) is encrypted, so the original encoding is
    hidden too. The key id is bound as associated data: relabelling a payload with another key id
    makes it fail authentication instead of decrypting under the wrong key.

    Args:
        keys: Key id to 32-byte key. Keep retired keys here for as long as histories written
            with them must stay readable.
        active_key_id: The key id that seals new payloads.

    Raises:
        ValueError: A key id is malformed, a key is not 32 bytes, or ``active_key_id`` is not in
            ``keys``.
    """

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        super().__init__()
        if not keys:
            raise ValueError("at least one encryption key is required")
        for key_id, key in keys.items():
            _check_key_id(key_id)
            _check_key(key_id, key)
        if active_key_id not in keys:
            raise ValueError(
                f"active encryption key id {active_key_id!r} is not among the configured "
                f"key ids ({', '.join(keys)})"
            )
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active_key_id = active_key_id

    @property
    def active_key_id(self) -> str:
        """The key id that seals new payloads."""
        return self._active_key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id this codec can decrypt."""
        return tuple(self._ciphers)

    def __repr__(self) -> str:
        return f"EncryptionCodec(active_key_id={self._active_key_id!r}, key_ids={self.key_ids!r})"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt every payload under the active key.

        Args:
            payloads: Payloads to encrypt; not mutated.

        Returns:
            One encrypted payload per input payload.
        """
        key_id = self._active_key_id
        cipher = self._ciphers[key_id]
        aad = key_id.encode()
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_SIZE)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), aad)
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_METADATA_KEY: aad},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt encrypted payloads and pass every other payload through unchanged.

        Args:
            payloads: Payloads to decrypt; not mutated.

        Returns:
            The original payloads, in order.

        Raises:
            UnknownKeyIdError: A payload names a key id that is not configured.
            DecryptionError: A payload is truncated, altered or not sealed by the named key.
        """
        return [self._decode_one(payload) for payload in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_key_id = payload.metadata.get(KEY_ID_METADATA_KEY)
        if raw_key_id is None:
            raise DecryptionError(None, f"the {KEY_ID_METADATA_KEY!r} metadata is missing")
        key_id = raw_key_id.decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyIdError(key_id, self.key_ids)
        data = payload.data
        if len(data) < NONCE_SIZE + _TAG_SIZE:
            raise DecryptionError(key_id, "the ciphertext is truncated")
        try:
            plain = cipher.decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], raw_key_id)
        except InvalidTag:
            raise DecryptionError(
                key_id,
                "authentication failed (the payload was altered, or another key was used "
                "under this key id)",
            ) from None
        try:
            return Payload.FromString(plain)
        except DecodeError:
            raise DecryptionError(key_id, "the decrypted bytes are not a payload") from None


def keys_from_env_value(value: str) -> tuple[dict[str, bytes], str]:
    """Parse a key list such as ``"k2:BASE64KEY,k1:BASE64KEY"``; the first key is the active one.

    This is the format of ``CAIRN_ENCRYPTION_KEYS``. Entries are separated by commas, each
    ``<key id>:<standard base64 of 32 random bytes>``; whitespace around entries is ignored. To
    rotate, put the new key first and keep the old ones after it.

    Args:
        value: The key list.

    Returns:
        The keys by id and the active key id.

    Raises:
        ValueError: The list is empty or malformed, a key id repeats, or a key is not base64 of
            exactly 32 bytes. Messages name entries by position and key id, never key material.
    """
    entries = [entry.strip() for entry in value.split(",")]
    if not any(entries):
        raise ValueError("the encryption key list is empty; expected '<key id>:<base64 key>,...'")
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(entries, start=1):
        key_id, separator, encoded = (part.strip() for part in entry.partition(":"))
        if not separator or not key_id or not encoded:
            raise ValueError(
                f"encryption key entry {position} is not of the form '<key id>:<base64 key>'"
            )
        if not _KEY_ID_PATTERN.fullmatch(key_id):
            # The "id" may be a key pasted in the wrong place, so it is not echoed.
            raise ValueError(
                f"encryption key entry {position} has an invalid key id: use 1 to 64 letters, "
                "digits, '.', '_' or '-'"
            )
        if key_id in keys:
            raise ValueError(f"encryption key id {key_id!r} appears more than once")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise ValueError(f"encryption key {key_id!r} is not valid base64") from None
        _check_key(key_id, key)
        keys[key_id] = key
    return keys, next(iter(keys))


def data_converter_with_codec(codec: PayloadCodec | None) -> DataConverter:
    """Build the project's data converter, with payload encryption when a codec is given.

    Starts from ``pydantic_data_converter``, whose failure converter becomes
    `activities.failures.CairnFailureConverter` (see `activities.failures`).
    With a codec, failure messages and stack traces are moved into encoded attributes so that
    the codec encrypts them too.

    Args:
        codec: The payload codec, or ``None`` for plain payloads.

    Returns:
        A copy of ``pydantic_data_converter`` with that failure converter and, when ``codec``
        is given, the codec and the encoded-attributes variant of the failure converter.
    """
    if codec is None:
        return _PLAIN
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=CairnFailureConverterWithEncodedAttributes,
    )


_PLAIN = dataclasses.replace(pydantic_data_converter, failure_converter_class=CairnFailureConverter)
