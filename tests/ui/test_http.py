"""The inspector's rules over HTTP (httpx against the ASGI app): bind and token, read-only,
CSRF-checked confirmed actions, the codec endpoint's origin rule, bad input, and logs."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from cairn.codec import EncryptionCodec
from cairn.ui import UIConfig, create_app
from memory import MemoryStore, NotFound, Provenance

NS = ("acme", "run", "wf-1")
TEMPORAL_UI = "http://127.0.0.1:8233"
TOKEN = "t" * 24
SECRET = "zebra-secret-value"


async def fill(store: MemoryStore, versions: int = 2) -> None:
    for i in range(1, versions + 1):
        prov = Provenance(agent="writer", workflow_id="wf-1", run_id="r", activity_id=str(i))
        async with store.commit(key=f"c{i}", provenance=prov) as commit:
            commit.put(NS, "output:writer", {"text": f"draft {i} {SECRET}"})


def client_for(store: MemoryStore, config: UIConfig) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(store, config))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8234")


@pytest.fixture
async def filled(sqlite_store: MemoryStore) -> MemoryStore:
    await fill(sqlite_store)
    return sqlite_store


@pytest.fixture
async def writable(filled: MemoryStore) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(filled, UIConfig(write=True)) as client:
        yield client


def test_a_bind_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(ValueError, match="CAIRN_UI_TOKEN"):
        UIConfig(host="0.0.0.0")
    assert UIConfig(host="0.0.0.0", token=TOKEN).token == TOKEN
    with pytest.raises(ValueError, match="16"):
        UIConfig(host="0.0.0.0", token="short")


async def test_with_a_token_every_page_needs_it(filled: MemoryStore) -> None:
    async with client_for(filled, UIConfig(host="0.0.0.0", token=TOKEN)) as client:
        assert (await client.get("/")).status_code == 401
        assert (await client.get("/", headers={"Authorization": "Bearer nope"})).status_code == 401
        ok = await client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200

        opened = await client.get(f"/ns/acme?token={TOKEN}&as_of=1")
        assert opened.status_code == 303
        assert opened.headers["location"] == "/ns/acme?as_of=1"
        assert "httponly" in opened.headers["set-cookie"].lower()
        # The cookie it set lets the browser in from now on.
        assert (await client.get("/ns/acme")).status_code == 200
        client.cookies.clear()
        assert (await client.get(f"/?token={'x' * 24}")).status_code == 401


async def test_read_only_refuses_fork_and_forget(filled: MemoryStore) -> None:
    async with client_for(filled, UIConfig()) as client:
        assert (await client.get("/forget?prefix=acme")).status_code == 403
        response = await client.post("/forget", data={"prefix": "acme", "confirm": "acme"})
        assert response.status_code == 403
        assert "read-only" in response.text
        assert (await client.post("/fork", data={"src": "acme", "dst": "b"})).status_code == 403
    assert (await filled.get(NS, "output:writer")).version == 2


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert match, "the form carries no CSRF token"
    return match.group(1)


async def test_forget_needs_the_csrf_token_and_the_prefix_typed_again(
    filled: MemoryStore, writable: httpx.AsyncClient
) -> None:
    form = await writable.get("/forget?prefix=acme/run")
    assert form.status_code == 200
    token = csrf_of(form.text)

    for data in (
        {"prefix": "acme/run", "confirm": "acme/run"},
        {"prefix": "acme/run", "confirm": "acme/run", "csrf": "0" * 64},
    ):
        refused = await writable.post("/forget", data=data)
        assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = {"prefix": "acme/run", "confirm": "acme", "csrf": token}
    assert (await writable.post("/forget", data=wrong)).status_code == 400
    cross = await writable.post(
        "/forget",
        data={"prefix": "acme/run", "confirm": "acme/run", "csrf": token},
        headers={"Origin": "http://evil.example"},
    )
    assert cross.status_code == 403
    assert (await filled.get(NS, "output:writer")).version == 2

    done = await writable.post(
        "/forget", data={"prefix": "acme/run", "confirm": "acme/run", "csrf": token}
    )
    assert done.status_code == 200
    with pytest.raises(NotFound):
        await filled.get(NS, "output:writer")


async def test_a_token_from_another_browser_is_refused(
    filled: MemoryStore, writable: httpx.AsyncClient
) -> None:
    token = csrf_of((await writable.get("/fork?src=acme/run/wf-1")).text)
    writable.cookies.clear()
    data = {"src": "acme/run/wf-1", "dst": "acme/run/copy", "csrf": token}
    assert (await writable.post("/fork", data=data)).status_code == 403


async def test_fork_as_of_a_commit(filled: MemoryStore, writable: httpx.AsyncClient) -> None:
    form = await writable.get("/fork?src=acme/run/wf-1&as_of=1")
    data = {
        "src": "acme/run/wf-1",
        "dst": "acme/run/copy",
        "as_of": "1",
        "csrf": csrf_of(form.text),
    }
    done = await writable.post("/fork", data=data)
    assert done.status_code == 303 and done.headers["location"] == "/ns/acme/run/copy"
    copied = await filled.get(("acme", "run", "copy"), "output:writer")
    assert copied.value == {"text": f"draft 1 {SECRET}"}


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/ns/acme/bad%20segment", "bad namespace"),
        ("/ns/acme?as_of=yesterday", "as_of"),
        ("/ns/acme?cursor=garbage", "cursor"),
        ("/entry/acme/run/wf-1", "key is required"),
        ("/entry/acme/run/wf-1?key=output:writer&a=9", "versions 1 to 2"),
        ("/search?prefix=acme%20x&q=draft", "bad prefix"),
    ],
)
async def test_bad_input_is_a_400_naming_it(
    filled: MemoryStore, writable: httpx.AsyncClient, path: str, named: str
) -> None:
    response = await writable.get(path)
    assert response.status_code == 400
    assert named in response.text


async def test_a_missing_entry_is_a_404(writable: httpx.AsyncClient) -> None:
    response = await writable.get("/entry/acme/run/wf-1?key=nothing-here")
    assert response.status_code == 404 and "nothing-here" in response.text


async def test_namespace_pages_follow_the_keyset_cursor(sqlite_store: MemoryStore) -> None:
    async with sqlite_store.commit(key="many") as commit:
        for i in range(25):
            commit.put(("acme", "docs"), f"k{i:02d}", {"text": f"doc {i}"})
    seen: list[str] = []
    async with client_for(sqlite_store, UIConfig(page_size=10)) as client:
        url: str | None = "/ns/acme/docs"
        while url:
            page = (await client.get(url)).text
            seen += re.findall(r"key=(k\d\d)\"", page)
            found = re.search(r'id="next" href="([^"]+)"', page)
            url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == [f"k{i:02d}" for i in range(25)]


async def test_as_of_shows_the_version_visible_then(writable: httpx.AsyncClient) -> None:
    then = (await writable.get("/ns/acme/run/wf-1?as_of=1")).text
    assert "draft 1" in then and "draft 2" not in then
    before = (await writable.get("/ns/acme/run/wf-1?as_of=0")).text
    assert "not written yet at commit 0" in before


async def test_search_marks_the_words(writable: httpx.AsyncClient) -> None:
    page = (await writable.get("/search?prefix=acme&q=draft")).text
    assert "<mark>draft</mark> 2" in page


async def test_logs_carry_no_value_or_query_text(
    writable: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await writable.get(f"/search?prefix=acme&q={SECRET}")
        await writable.get("/entry/acme/run/wf-1?key=output:writer")
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("cairn"))
    assert "GET /search 200" in logged
    assert SECRET not in logged and "draft" not in logged


def step_payload(commit_seq: int) -> dict[str, object]:
    result = {
        "status": "completed",
        "steps": [
            {
                "step": "writer",
                "agent": "writer",
                "output": {
                    "namespace": list(NS),
                    "key": "output:writer",
                    "version": 1,
                    "commit_seq": commit_seq,
                    "kind": "entry",
                },
                "commit_seq": commit_seq,
                "preview": "draft",
            }
        ],
    }
    return {
        "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
        "data": base64.b64encode(json.dumps(result).encode()).decode(),
    }


def decoded_steps(response: httpx.Response) -> list[dict[str, object]]:
    payload = response.json()["payloads"][0]
    steps: list[dict[str, object]] = json.loads(base64.b64decode(payload["data"]))["steps"]
    return steps


async def test_codec_adds_the_referenced_text_for_the_temporal_ui_only(
    filled: MemoryStore,
) -> None:
    async with client_for(filled, UIConfig(temporal_ui_url=TEMPORAL_UI)) as client:
        body = {"payloads": [step_payload(1)]}
        refused = await client.post(
            "/codec/default/decode", json=body, headers={"Origin": "http://evil.example"}
        )
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
        # Not a browser and no token configured: nobody else reads through it.
        assert (await client.post("/codec/decode", json=body)).status_code == 403

        for origin in (TEMPORAL_UI, "http://localhost:8233"):
            preflight = await client.options("/codec/default/decode", headers={"Origin": origin})
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == origin
            shown = await client.post(
                "/codec/default/decode", json=body, headers={"Origin": origin}
            )
            assert shown.status_code == 200
            (step,) = decoded_steps(shown)
            # v1, the version the step wrote, although v2 is current.
            assert step["output_text"] == f"draft 1 {SECRET}"
            assert list(step)[:4] == ["step", "agent", "output_text", "output"]


async def test_codec_decrypts_with_the_workers_codec(filled: MemoryStore) -> None:
    codec = EncryptionCodec({"k1": b"k" * 32}, "k1")
    config = UIConfig(temporal_ui_url=TEMPORAL_UI, codec=codec)
    plain = json_format.ParseDict(step_payload(2), Payload())
    (sealed,) = await codec.encode([plain])
    body = {"payloads": [json_format.MessageToDict(sealed)]}
    async with client_for(filled, config) as client:
        shown = await client.post("/codec/decode", json=body, headers={"Origin": TEMPORAL_UI})
    assert shown.status_code == 200
    (step,) = decoded_steps(shown)
    assert step["output_text"] == f"draft 2 {SECRET}"
