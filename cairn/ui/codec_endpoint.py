"""The Temporal UI's remote codec endpoint, served by `cairn ui`: decode for display only.

``cairn dev`` starts the Temporal UI with ``--ui-codec-endpoint <cairn ui>/codec``, so the UI
posts each payload it shows to ``/codec/decode`` (or ``/codec/<namespace>/decode``). Encrypted
payloads are decrypted with the workers' codec; then every step result in them (an object with
``step``, ``agent`` and an ``output`` reference) gains ``output_text``: the text of the exact
version it references, read from memory. Workers never call this endpoint, so histories keep
references only. It answers the Temporal UI's origin only (CORS), or a caller with the token.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from temporalio.api.common.v1 import Payload, Payloads

from cairn.codec import CodecError
from cairn.ui.config import UIConfig
from cairn.ui.security import token_ok
from cairn.ui.views import value_text
from memory import MemoryStore, MemoryStoreError

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_OUTPUT_CHARS = 20_000
_STEP_FIELDS = frozenset({"step", "agent", "output", "commit_seq"})
_REF_FIELDS = frozenset({"namespace", "key", "version", "commit_seq"})


def _cors(config: UIConfig, request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    headers = {"Vary": "Origin"}
    if origin is not None and origin in config.temporal_ui_origins:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def _allowed(config: UIConfig, request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is not None:
        return origin in config.temporal_ui_origins
    # No Origin: not a browser. Only a caller holding the token (when there is one) may read.
    return config.token is not None and token_ok(config, request)


async def preflight(config: UIConfig, request: Request) -> Response:
    """Answer the Temporal UI's CORS preflight."""
    headers = _cors(config, request)
    if "Access-Control-Allow-Origin" not in headers:
        return Response(status_code=403, headers=headers)
    headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    headers["Access-Control-Allow-Headers"] = "authorization, content-type, x-namespace"
    headers["Access-Control-Max-Age"] = "600"
    return Response(status_code=204, headers=headers)


async def decode(config: UIConfig, store: MemoryStore, request: Request) -> Response:
    """Decode payloads for display: decrypt, then add each step result's output text."""
    headers = _cors(config, request)
    if not _allowed(config, request):
        return JSONResponse({"error": "not the Temporal UI's origin"}, 403, headers=headers)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return JSONResponse({"error": "request body too large"}, 413, headers=headers)
    try:
        payloads = list(json_format.Parse(body, Payloads()).payloads)
    except (json_format.ParseError, UnicodeDecodeError):
        return JSONResponse({"error": "body is not a payloads object"}, 400, headers=headers)
    try:
        if config.codec is not None:
            payloads = await config.codec.decode(payloads)
    except CodecError as error:
        return JSONResponse({"error": str(error)}, 400, headers=headers)
    shown = [await _with_outputs(store, p) for p in payloads]
    data = {"payloads": [json_format.MessageToDict(p) for p in shown]}
    return JSONResponse(data, headers={**headers, "Cache-Control": "no-store"})


async def _with_outputs(store: MemoryStore, payload: Payload) -> Payload:
    if payload.metadata.get("encoding") != b"json/plain":
        return payload
    try:
        value = json.loads(payload.data)
    except ValueError:
        return payload
    changed = await _annotate(store, value)
    if not changed:
        return payload
    out = Payload()
    out.CopyFrom(payload)
    out.data = json.dumps(value, ensure_ascii=False).encode()
    return out


async def _annotate(store: MemoryStore, value: Any) -> bool:
    """Add ``output_text`` to every step result inside ``value``; whether any was added.

    The text goes just before the ``output`` reference, where the UI's JSON view shows it.
    """
    changed = False
    if isinstance(value, list):
        for item in value:
            changed = await _annotate(store, item) or changed
    elif isinstance(value, dict):
        for item in value.values():
            changed = await _annotate(store, item) or changed
        ref = value.get("output")
        if value.keys() >= _STEP_FIELDS and isinstance(ref, dict) and ref.keys() >= _REF_FIELDS:
            text = await _output_text(store, ref)
            fields = list(value.items())
            value.clear()
            for name, item in fields:
                if name == "output":
                    value["output_text"] = text
                value[name] = item
            changed = True
    return changed


async def _output_text(store: MemoryStore, ref: dict[str, Any]) -> str:
    try:
        entry = await store.get(tuple(ref["namespace"]), ref["key"], as_of=int(ref["commit_seq"]))
    except (MemoryStoreError, TypeError, ValueError):
        return "(not in memory: forgotten, purged or another store)"
    value = entry.value
    field = value.get("text") if isinstance(value, dict) else None
    text = field if isinstance(field, str) else value_text(value)
    return text if len(text) <= MAX_OUTPUT_CHARS else text[:MAX_OUTPUT_CHARS] + "…"
