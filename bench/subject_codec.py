"""What per-subject encryption (crypto-shredding) costs next to the master-key codec.

Per payload: encode and decode one payload of each size a session step puts in its history.
Per step: the codec work of one session turn as the SDK does it: bind the codec to the
workflow's context, then encode and decode the turn, the step's input and result and the reply
(the client and the worker each decode what the other encoded). The subject codec runs with a
warm data-key cache, as a worker does; a cold row shows a cache miss (one read of the key from
memory, and unwrapping it). Target (reported): a step costs at most 1.1x the master codec's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadCodec, WorkflowSerializationContext

from bench.databases import scratch
from bench.runner import Profile, Row, benchmark
from bench.timing import Call, interleave
from cairn.codec import EncryptionCodec
from cairn.subject_codec import SubjectCodec
from memory import MemoryStore

STEP_TARGET = 1.1
# What one turn puts in a history, by size: the turn, the reply, the step's input and result.
SIZES = {"turn": 300, "reply": 1500, "step input": 2000, "step result": 1000}


def _payload(chars: int) -> Payload:
    text = ("lorem ipsum dolor sit amet " * (chars // 27 + 1))[:chars]
    [payload] = pydantic_data_converter.payload_converter.to_payloads([{"text": text}])
    return payload


def _round_trip(codec: PayloadCodec, payloads: Sequence[Payload]) -> Call:
    async def call(_: int) -> object:
        return await codec.decode(await codec.encode(payloads))

    return call


def _step(codec: PayloadCodec, payloads: Sequence[Payload], workflow_id: str) -> Call:
    context = WorkflowSerializationContext(namespace="default", workflow_id=workflow_id)

    async def call(_: int) -> object:
        bound = codec.with_context(context) if isinstance(codec, SubjectCodec) else codec
        # Four payloads, each encoded once and decoded once, in separate codec calls as the
        # SDK makes them (one per command or activation).
        for payload in payloads:
            await bound.decode(await bound.encode([payload]))
        return bound

    return call


@benchmark("subject_codec", "Per-subject encryption vs the master-key codec, per payload and step")
async def subject_codec_cost(profile: Profile) -> list[Row]:
    rounds, seconds = (7, 0.5) if profile.full else (5, 0.2)
    master = EncryptionCodec({"m1": os.urandom(32)}, "m1")
    rows: list[Row] = []
    with scratch(profile, "sqlite", "subject_codec") as db:
        async with await MemoryStore.open(db.url) as store:
            subject = SubjectCodec(master, store).with_context(
                WorkflowSerializationContext(namespace="default", workflow_id="session:acme:s-1")
            )
            payloads = {name: _payload(chars) for name, chars in SIZES.items()}
            sides: dict[str, Call] = {}
            for name, payload in payloads.items():
                sides[f"master {name}"] = _round_trip(master, [payload])
                sides[f"subject {name}"] = _round_trip(subject, [payload])
            sides["master step"] = _step(master, list(payloads.values()), "session:acme:s-1")
            sides["subject step"] = _step(
                SubjectCodec(master, store), list(payloads.values()), "session:acme:s-1"
            )
            # No cache: every codec call reads the key from memory and unwraps it.
            sides["subject step, cold key"] = _step(
                SubjectCodec(master, store, cache_ttl=0),
                list(payloads.values()),
                "session:acme:s-1",
            )
            result = await interleave(sides, rounds=rounds, seconds=seconds)
    for name, chars in [*SIZES.items(), ("step", None), ("step, cold key", None)]:
        key = f"subject {name}"
        base = result["master step" if chars is None else f"master {name}"]
        p50, base_p50 = result[key].percentile_us(0.5), base.percentile_us(0.5)
        ratio = p50 / base_p50
        rows.append(
            {
                "what": name,
                "payload_chars": chars,
                "master_p50_us": round(base_p50, 1),
                "subject_p50_us": round(p50, 1),
                "x_master": round(ratio, 3),
                "target_met": None if name != "step" else ratio <= STEP_TARGET,
            }
        )
    return rows
