"""Per-subject encryption of Temporal payloads, so that `forget` also shreds workflow histories.

Temporal cannot delete from a history, so the payloads of a session's workflow (its input, every
turn and reply, step inputs, results and previews, failures) are sealed with AES-256-GCM under a
data key of that session, and those of a chain acting for a user (approval edits too) under the
user's data key. The data key lives in Cairn memory (`memory.keys`), wrapped by the
master keys of `cairn.codec.EncryptionCodec` (``CAIRN_ENCRYPTION_KEYS``, rotated as before);
`MemoryStore.forget` destroys it in the same transaction that deletes the subject's memory, and
from then on those payloads decode to a "forgotten" marker everywhere.

How a payload gets its subject: Temporal hands a codec a serialization context (the workflow id
of the workflow or activity the payloads belong to) on the client and in the worker, outside
the sandbox. `SubjectCodec.with_context` maps a session's workflow id (``session:<tenant>:
<session>``) or a user's chain's (``chain:<tenant>:<user>:...``) to its subject
(`workflows.ids.workflow_subject`) and stamps it into each sealed payload's metadata; decoding reads
the subject from that metadata alone, which is all the codec server and ``temporal workflow
show`` ever have. Payloads of other workflows, and ones without a context, go to the master
codec unchanged. A session's key takes its user as owner when the session opens (see
`activities.writes`), so forgetting the user destroys it too.

Under a forgotten subject every payload, old or new, becomes the marker: new text never lands
in a history in clear, and `ForgettingPayloadConverter` turns the marker into
`SubjectForgottenError`, which fails the task of any workflow still reading it (never the
worker).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)

from cairn.codec import CodecError, DecryptionError, EncryptionCodec, data_converter_with_codec
from memory.namespace import Namespace, encode
from memory.store import MemoryStore
from workflows.ids import workflow_subject

__all__ = [
    "FORGOTTEN_METADATA_KEY",
    "SUBJECT_ENCODING",
    "SUBJECT_METADATA_KEY",
    "ForgettingPayloadConverter",
    "SubjectCodec",
    "SubjectForgottenError",
    "subject_data_converter",
]

SUBJECT_ENCODING = b"binary/cairn-subject-encrypted"
"""``encoding`` of payloads sealed under a subject's data key."""
SUBJECT_METADATA_KEY = "cairn-subject"
"""Metadata naming the subject (an encoded namespace) whose data key sealed a payload."""
FORGOTTEN_METADATA_KEY = "cairn-forgotten"
"""Metadata marking a payload whose subject was forgotten; its data is a JSON string saying so."""

_KEY_SIZE = 32
_NONCE_SIZE = 12


def _name(subject: bytes) -> str:
    return subject.decode("utf-8", errors="replace")


def _marker(subject: bytes) -> Payload:
    text = f"[forgotten: the data of {_name(subject)} was deleted by cairn memory forget]"
    return Payload(
        metadata={"encoding": b"json/plain", FORGOTTEN_METADATA_KEY: subject},
        data=json.dumps(text).encode(),
    )


class _KeyCache:
    """Unwrapped data keys by subject, least recently used first; shared by bound codecs.

    A live key is trusted for ``ttl`` seconds, so a forget made by another process reaches this
    one within that time; a forgotten one (None) is permanent.
    """

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self._keys: OrderedDict[bytes, tuple[AESGCM | None, float]] = OrderedDict()

    def get(self, subject: bytes) -> tuple[AESGCM | None] | None:
        found = self._keys.get(subject)
        if found is None:
            return None
        cipher, expires = found
        if time.monotonic() > expires:
            del self._keys[subject]
            return None
        self._keys.move_to_end(subject)
        return (cipher,)

    def put(self, subject: bytes, cipher: AESGCM | None) -> None:
        expires = time.monotonic() + self.ttl if cipher is not None else float("inf")
        self._keys[subject] = (cipher, expires)
        self._keys.move_to_end(subject)
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)


class _Store:
    """The key store, opened from its URL on first use when the codec was given one."""

    def __init__(self, store: MemoryStore | str) -> None:
        self._store = store if isinstance(store, MemoryStore) else None
        self._url = store if isinstance(store, str) else ""
        self._lock = asyncio.Lock()

    async def get(self) -> MemoryStore:
        if self._store is None:
            async with self._lock:
                if self._store is None:
                    self._store = await MemoryStore.open(self._url, pool_size=2)
        return self._store


class SubjectCodec(PayloadCodec, WithSerializationContext):
    """Seal a subject's payloads under its data key; every other payload under the master keys.

    Args:
        master: The master-key codec: wraps data keys and seals payloads without a subject.
        store: The memory holding the data keys, or its URL: a client that only starts
            sessions then opens it on the first session payload it seals or opens.
        cache_size: Most unwrapped data keys kept in this process.
        cache_ttl: Seconds a cached live key is used before memory is asked again; a forget
            made elsewhere takes effect here within it.
    """

    def __init__(
        self,
        master: EncryptionCodec,
        store: MemoryStore | str,
        *,
        cache_size: int = 4096,
        cache_ttl: float = 30.0,
    ) -> None:
        super().__init__()
        if cache_size < 1 or cache_ttl < 0:
            raise ValueError("cache_size must be at least 1 and cache_ttl not negative")
        self._master = master
        self._store = _Store(store)
        self._cache = _KeyCache(cache_size, cache_ttl)
        # Codecs bound by workflow id: the SDK binds one per activation and per command.
        self._bound: dict[str, SubjectCodec] = {}
        self._subject: Namespace | None = None
        self._aad = b""

    @property
    def subject(self) -> Namespace | None:
        """The subject this codec seals for, from its serialization context."""
        return self._subject

    def with_context(self, context: SerializationContext) -> SubjectCodec:
        """This codec bound to the subject of ``context``'s workflow, if it has one."""
        workflow_id = getattr(context, "workflow_id", None)
        if not isinstance(workflow_id, str):
            return self
        bound = self._bound.get(workflow_id)
        if bound is None:
            subject = workflow_subject(workflow_id)
            bound = object.__new__(SubjectCodec)
            bound.__dict__.update(self.__dict__)  # the store and the caches are shared
            bound._subject = subject
            bound._aad = b"" if subject is None else encode(subject).encode()
            if len(self._bound) >= self._cache.size:
                self._bound.clear()
            self._bound[workflow_id] = bound
        return bound

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Seal ``payloads`` under the bound subject's data key, or the master key without one."""
        aad = self._aad
        if not aad:
            return await self._master.encode(payloads)
        cipher = await self._cipher(aad, create=True)
        if cipher is None:
            return [_marker(aad) for _ in payloads]
        return [
            Payload(
                metadata={"encoding": SUBJECT_ENCODING, SUBJECT_METADATA_KEY: aad},
                data=(nonce := os.urandom(_NONCE_SIZE))
                + cipher.encrypt(nonce, payload.SerializeToString(), aad),
            )
            for payload in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Open each payload by the subject its metadata names; forgotten ones become markers.

        Raises:
            CodecError: A payload names no subject, a subject that never had a key, or fails
                authentication; or a master-key payload cannot be decrypted.
        """
        decoded: list[Payload] = []
        for payload in payloads:
            if payload.metadata.get("encoding") != SUBJECT_ENCODING:
                decoded.extend(await self._master.decode([payload]))
                continue
            raw = payload.metadata.get(SUBJECT_METADATA_KEY)
            if raw is None:
                raise DecryptionError(None, f"the {SUBJECT_METADATA_KEY!r} metadata is missing")
            cipher = await self._cipher(raw, create=False)
            if cipher is None:
                decoded.append(_marker(raw))
                continue
            data = payload.data
            try:
                plain = cipher.decrypt(data[:_NONCE_SIZE], data[_NONCE_SIZE:], raw)
                decoded.append(Payload.FromString(plain))
            except (InvalidTag, ValueError, DecodeError):
                raise CodecError(
                    f"cannot decrypt a payload of subject {_name(raw)!r}: it was altered or "
                    "truncated"
                ) from None
        return decoded

    async def _cipher(self, aad: bytes, *, create: bool) -> AESGCM | None:
        """The cipher of the subject ``aad`` names, None once forgotten: cached, or from memory."""
        cached = self._cache.get(aad)
        if cached is not None:
            return cached[0]
        subject = _name(aad)
        ns = tuple(subject.split("/"))
        store = await self._store.get()
        stored = await store.data_key(ns)
        if stored is None:
            if not create:
                raise CodecError(
                    f"no data key is recorded for subject {subject!r}: is this the memory "
                    "store the workers use?"
                )
            key = AESGCM.generate_key(bit_length=_KEY_SIZE * 8)
            stored = await store.create_data_key(
                ns, self._master.active_key_id, await self._wrap(subject, key)
            )
        cipher = None if stored.forgotten else AESGCM(await self._unwrap(subject, stored.wrapped))
        self._cache.put(aad, cipher)
        return cipher

    async def _wrap(self, subject: str, key: bytes) -> bytes:
        inner = Payload(metadata={SUBJECT_METADATA_KEY: subject.encode()}, data=key)
        (sealed,) = await self._master.encode([inner])
        return sealed.SerializeToString()

    async def _unwrap(self, subject: str, wrapped: bytes) -> bytes:
        (inner,) = await self._master.decode([Payload.FromString(wrapped)])
        # The subject is sealed with the key: a row copied onto another subject cannot open it.
        if inner.metadata.get(SUBJECT_METADATA_KEY) != subject.encode() or (
            len(inner.data) != _KEY_SIZE
        ):
            raise CodecError(f"the data key stored for subject {subject!r} is not that subject's")
        return inner.data


class ForgettingPayloadConverter(PydanticPayloadConverter):
    """The pydantic payload converter, failing non-retryably on a forgotten subject's marker."""

    def from_payloads(
        self, payloads: Sequence[Payload], type_hints: list[type] | None = None
    ) -> list[Any]:
        """Convert ``payloads``, refusing markers.

        Raises:
            SubjectForgottenError: A payload is the marker of a forgotten subject.
        """
        for payload in payloads:
            subject = payload.metadata.get(FORGOTTEN_METADATA_KEY)
            if subject is not None:
                # Not an ApplicationError: failing the workflow where its history goes on is a
                # nondeterminism error. Its task fails with this as the cause; the worker lives.
                raise SubjectForgottenError(subject.decode(errors="replace"))
        return super().from_payloads(payloads, type_hints)


class SubjectForgottenError(RuntimeError):
    """A payload read is the marker of a forgotten subject.

    In a workflow, its task fails with this error as the cause (Temporal retries the task, so
    terminate the workflow); on a client, the call reading the payload raises it.
    """

    def __init__(self, subject: str) -> None:
        self.subject = subject
        super().__init__(
            f"the data of {subject} was forgotten (cairn memory forget): what it sealed in "
            "Temporal can no longer be read; terminate workflows that still need it"
        )


def subject_data_converter(codec: PayloadCodec) -> DataConverter:
    """`cairn.codec.data_converter_with_codec` for ``codec``, refusing forgotten markers."""
    return dataclasses.replace(
        data_converter_with_codec(codec), payload_converter_class=ForgettingPayloadConverter
    )
