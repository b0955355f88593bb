"""The long-running commands: `cairn demo`, `cairn dev`, `cairn codec-server`, `cairn worker`."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import uuid
from pathlib import Path

import httpx

from cairn.devserver import free_port
from tests.cli.conftest import Stack, answers, cairn, clean_env, start


async def test_demo_starts_its_own_server_and_runs_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(TEMPORAL_ADDRESS=f"127.0.0.1:{port}", CAIRN_UI_PORT="0")
    done = await cairn("demo", env=env, cwd=tmp_path, timeout=180)
    assert done.code == 0, done.out + done.err
    out = done.out
    assert "the offline scripted model" in out
    assert f"started a dev server at 127.0.0.1:{port}" in out
    assert "✓ planner" in out and "approve: [scripted] Every claim cites its source" in out
    assert "Final answer" in out
    assert re.search(r"│ \[scripted\] Revised report \(\d findings\):", out), out
    assert "agent > [scripted] Welcome back, Ada!" in out
    assert "Memory written by this run" in out
    assert re.search(r"acme/user/ada-\w+ +│ name +│ +v1 │ support", out), out
    assert re.search(r"acme/run/research-\w+ +│ output:writer +│ +v2 │ writer", out), out
    links = re.findall(r"http://127\.0\.0\.1:\d+/namespaces/default/workflows/\S+", out)
    assert len(links) == 3
    assert (tmp_path / ".cairn" / "memory.db").exists()
    assert (tmp_path / ".cairn" / "temporal.db").exists()
    assert not answers(port), "the dev server the demo started is still running"
    # The demo's memory is where the inspector looks by default.
    research_id = re.search(r"workflow (research-\w+)", out)
    assert research_id is not None
    steps = await cairn("memory", "steps", research_id[1], "--json", env=clean_env(), cwd=tmp_path)
    assert [s["step"] for s in steps.json()][1:2] == ["planner"]


async def test_demo_reuses_a_running_server(stack: Stack, tmp_path: Path) -> None:
    env = clean_env(TEMPORAL_ADDRESS=stack.address, CAIRN_UI_PORT=str(free_port()))
    done = await cairn("demo", env=env, cwd=tmp_path, timeout=180)
    assert done.code == 0, done.out + done.err
    assert f"using the server running at {stack.address}" in done.out
    assert "Welcome back, Ada!" in done.out
    assert "No UI answers next to" in done.out
    assert answers(int(stack.address.rsplit(":", 1)[1]))


async def test_dev_runs_server_and_worker_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    with socket.socket() as taken:  # the UI port asked for is in use: dev picks another
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ui_port = taken.getsockname()[1]
        env = clean_env(TEMPORAL_ADDRESS=address, CAIRN_UI_PORT=str(ui_port))
        dev = await start("dev", "--trace", "console", env=env, cwd=tmp_path)
        await dev.wait_for_line("Ready. Press Ctrl-C to stop.")
    assert any(f"Temporal  {address} started" in line for line in dev.lines), dev.lines
    ui = next(line for line in dev.lines if line.startswith("UI"))
    assert "http://127.0.0.1:" in ui and f":{ui_port}" not in ui
    # Its worker answers a session on the default task queue, writing .cairn/memory.db.
    reply = await cairn("session", "send", "s-1", "hello", env=env, cwd=tmp_path)
    assert "[scripted] You said: hello" in reply.out, reply.err
    code, out, err = await dev.stop(signal.SIGINT)
    assert code == 0, err
    assert "Stopped." in out
    assert not answers(port)
    assert (tmp_path / ".cairn" / "memory.db").exists()


async def test_dev_reuses_a_server_and_leaves_it_running_on_sigterm(
    stack: Stack, tmp_path: Path
) -> None:
    env = clean_env(TEMPORAL_ADDRESS=stack.address, CAIRN_TASK_QUEUE=f"dev-{uuid.uuid4().hex[:6]}")
    dev = await start("dev", env=env, cwd=tmp_path)
    await dev.wait_for_line("Ready.")
    assert any(f"{stack.address} reused" in line for line in dev.lines), dev.lines
    code, out, _ = await dev.stop(signal.SIGTERM)
    assert code == 0 and "Stopped." in out
    assert answers(int(stack.address.rsplit(":", 1)[1]))
    bad = await cairn("dev", "--trace", "jaeger", env=env, cwd=tmp_path)
    assert bad.code == 2 and "jaeger" in bad.err


async def test_codec_server_serves_until_ctrl_c(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    env = clean_env(
        CAIRN_ENCRYPTION_KEYS=f"k1:{key}", CAIRN_CODEC_TOKEN="secret-token", CAIRN_CODEC_PORT="0"
    )
    server = await start("codec-server", env=env, cwd=tmp_path)
    line = await server.wait_for_line("codec server listening on")
    url = line.split(" on ")[1].split()[0]
    async with httpx.AsyncClient() as http:
        health = await http.get(f"{url}/healthz")
        denied = await http.post(f"{url}/decode", json={"payloads": []})
        allowed = await http.post(
            f"{url}/decode",
            json={"payloads": []},
            headers={"Authorization": "Bearer secret-token"},
        )
    assert health.json() == {"status": "ok"}
    assert denied.status_code == 401 and allowed.status_code == 200
    code, out, _ = await server.stop(signal.SIGINT)
    assert code == 0 and "codec server stopped" in out
    no_token, bad_key = await asyncio.gather(
        cairn("codec-server", env=clean_env(CAIRN_ENCRYPTION_KEYS=f"k1:{key}"), cwd=tmp_path),
        cairn(
            "codec-server",
            env=clean_env(CAIRN_ENCRYPTION_KEYS="nope", CAIRN_CODEC_TOKEN="t"),
            cwd=tmp_path,
        ),
    )
    no_token.fails_with("CAIRN_CODEC_TOKEN is not set")
    bad_key.fails_with("encryption key entry 1")


async def test_worker_serves_until_sigterm(stack: Stack, tmp_path: Path) -> None:
    health = free_port()
    env = clean_env(
        TEMPORAL_ADDRESS=stack.address,
        CAIRN_TASK_QUEUE=f"w-{uuid.uuid4().hex[:6]}",
        CAIRN_MEMORY_URL=f"sqlite:///{tmp_path / 'memory.db'}",
        CAIRN_HEALTH_PORT=str(health),
    )
    worker = await start("worker", env=env, cwd=tmp_path)
    async with httpx.AsyncClient() as http:
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            try:
                if (await http.get(f"http://127.0.0.1:{health}/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert asyncio.get_running_loop().time() < deadline, "worker never became ready"
            await asyncio.sleep(0.1)
    reply = await cairn("session", "send", "s-1", "hello worker", env=env, cwd=tmp_path)
    assert "You said: hello worker" in reply.out, reply.err
    code, _, err = await worker.stop(signal.SIGTERM)
    assert code == 0, err
    unreachable = await cairn(
        "worker", env={**env, "TEMPORAL_ADDRESS": "127.0.0.1:1"}, cwd=tmp_path
    )
    assert unreachable.code == 2 and "cannot reach Temporal at 127.0.0.1:1" in unreachable.err
    assert "Traceback" not in unreachable.err


async def test_every_command_has_help(tmp_path: Path) -> None:
    commands = [
        [],
        ["dev"],
        ["demo"],
        ["run"],
        ["approve"],
        ["worker"],
        ["codec-server"],
        ["session"],
        ["session", "send"],
        ["session", "show"],
        ["session", "end"],
        ["memory"],
        *(
            ["memory", name]
            for name in ("ls", "get", "history", "search", "steps", "fork", "forget", "migrate")
        ),
    ]
    results = await asyncio.gather(
        *(cairn(*command, "--help", env=clean_env(), cwd=tmp_path) for command in commands)
    )
    for command, result in zip(commands, results, strict=True):
        assert result.code == 0, (command, result.err)
        assert "Usage: cairn" in result.out, command
    listed = results[0].out
    for name in ("dev", "demo", "run", "approve", "worker", "codec-server", "session", "memory"):
        assert name in listed
    assert "--debug" in listed
    dev, demo = (" ".join(r.out.split()) for r in results[1:3])
    assert "TEMPORAL_ADDRESS" in dev and "CAIRN_UI_PORT" in dev
    assert "CAIRN_EXTENSIONS=myteam cairn dev" in dev and "--no-worker" in dev
    assert "offline scripted model" in demo and "OPENAI_API_KEY" in demo
