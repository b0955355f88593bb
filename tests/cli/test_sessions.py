"""`cairn session send` on a user's paths: wrong users, ended and idle sessions, a lost link."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr
from temporalio.client import Client

from activities.llm import ProviderSettings
from cairn.cli.runs import send
from cairn.runtime import Settings, build_worker, connect
from memory import MemoryStore
from tests.activities.fake_providers import FakeProvider, openai_completion
from tests.cli.conftest import Stack, cairn, clean_env, start
from workflows.contracts import SessionEnd, SessionInput, Turn
from workflows.session import SessionWorkflow, session_workflow_id
from workflows.teams import support_agent


async def test_a_user_other_than_the_sessions_is_refused_before_anything_runs(
    stack: Stack,
) -> None:
    session = f"s-{uuid.uuid4().hex[:6]}"
    first = await stack.run("session", "send", session, "Hi, I'm Ada", "--user", "u-ada")
    assert first.code == 0, first.err
    other = await stack.run("session", "send", session, "Hi, I'm Bob", "--user", "u-bob")
    other.fails_with(f"session {session!r} belongs to user 'u-ada', not 'u-bob'")
    same = await stack.run("session", "send", session, "Still me", "--user", "u-ada", "--json")
    assert same.json()["turn"] == 2  # the refused message was never a turn


async def test_a_malformed_user_is_refused_before_the_session_starts(stack: Stack) -> None:
    session = f"s-{uuid.uuid4().hex[:6]}"
    bad = await stack.run("session", "send", session, "hello", "--user", "ada lovelace/1")
    bad.fails_with("user")
    assert "ada lovelace/1" in bad.err
    shown = await stack.run("session", "show", session)
    shown.fails_with(f"no workflow 'session:acme:{session}'")


async def test_an_ended_session_refuses_another_message(stack: Stack) -> None:
    ended = f"s-{uuid.uuid4().hex[:6]}"
    assert (await stack.run("session", "send", ended, "hello")).code == 0
    assert (await stack.run("session", "end", ended)).code == 0
    refused = await stack.run("session", "send", ended, "hello again")
    refused.fails_with(f"session {ended!r} was ended; start another session name")
    assert f"cairn session show {ended})" in refused.err


class Proxy:
    """A TCP proxy to the dev server whose connections can be cut, as a network would."""

    def __init__(self, target: str) -> None:
        self.host, port = target.rsplit(":", 1)
        self.port = int(port)
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.writers += [writer, up_writer]
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for each in (writer, up_writer):
                each.close()
                with contextlib.suppress(OSError):
                    await each.wait_closed()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await self.server.wait_closed()


@contextlib.asynccontextmanager
async def openai_worker(stack: Stack, fake: FakeProvider) -> AsyncIterator[str]:
    """A worker whose OpenAI endpoint is ``fake``, on a task queue of its own."""
    settings = Settings(
        temporal={"target_host": stack.address},
        task_queue=f"lost-{uuid.uuid4().hex[:6]}",
        memory_url=f"sqlite:///{stack.cwd / 'memory.db'}",
        providers=ProviderSettings(openai_api_key=SecretStr("k"), openai_base_url=f"{fake.url}/v1"),
    )
    client = await connect(settings)
    store = await MemoryStore.open(settings.memory_url)
    try:
        async with build_worker(client, store, settings):
            yield settings.task_queue
    finally:
        await store.close()


async def test_a_connection_lost_mid_turn_names_the_message_id_to_resend_with(
    stack: Stack, tmp_path: Path
) -> None:
    fake = FakeProvider()
    release = threading.Event()
    fake.reply_after(release, openai_completion("Your invoices are back."))
    proxy = Proxy(stack.address)
    session = f"s-{uuid.uuid4().hex[:6]}"
    try:
        async with openai_worker(stack, fake) as queue:
            env = clean_env(
                TEMPORAL_ADDRESS=await proxy.start(), CAIRN_TASK_QUEUE=queue, OPENAI_API_KEY="k"
            )
            sending = await start("session", "send", session, "Where are my invoices?", env=env)
            while not fake.requests:  # the turn is in the model call
                await asyncio.sleep(0.05)
            await proxy.cut()
            lost = await sending.stop(0, timeout=90)
            code, out, err = lost
            assert code == 1 and out == "", err
            assert "the connection to Temporal failed (" in err, err
            assert "it may or may not have been processed" in err
            resend = shlex.split(err.split("Resend it safely (it runs at most once) with: ")[1])
            assert resend[:4] == ["cairn", "session", "send", session]
            message_id = resend[resend.index("--message-id") + 1]
            release.set()
            again = await cairn(
                *resend[1:],
                "--json",
                env={**env, "TEMPORAL_ADDRESS": stack.address},
                cwd=tmp_path,
            )
            assert again.code == 0, again.err
            reply = again.json()
            assert reply["message_id"] == message_id and reply["turn"] == 1
            assert reply["text"] == "Your invoices are back."
            assert len(fake.requests) == 1  # the resend did not run the turn again
    finally:
        fake.close()


async def test_an_idle_session_resumes_as_it_was_with_its_turns_numbered_on(
    stack: Stack, client: Client
) -> None:
    session = f"s-{uuid.uuid4().hex[:6]}"
    inp = SessionInput(
        tenant="acme",
        session=session,
        user="u-ada",
        agent=support_agent(model="scripted"),
        idle_timeout=timedelta(seconds=1),
    )
    await send(client, inp, Turn(message_id="m1", text="Hello"), task_queue=stack.task_queue)
    handle = client.get_workflow_handle_for(
        SessionWorkflow.run, session_workflow_id("acme", session)
    )
    assert await handle.result() == SessionEnd(turns=1, reason="idle")

    other = await stack.run("session", "send", session, "Hi", "--user", "u-bob")
    other.fails_with(f"session {session!r} belongs to user 'u-ada', not 'u-bob'")
    resumed = await stack.run("session", "send", session, "Back again", "--json")
    assert resumed.code == 0, resumed.err
    reply = resumed.json()
    assert reply["turn"] == 2 and reply["output"]["output"]["key"] == "output:turn-2"
    # The resumed run kept the session's 1 s idle timeout, not the command's 1 h default.
    assert await asyncio.wait_for(handle.result(), 60) == SessionEnd(turns=2, reason="idle")

    shown = await stack.run("session", "show", session, "--json")
    transcript = shown.json()["transcript"]
    said = [(t["item"]["role"], t["item"]["content"]) for t in transcript]
    assert said[0] == ("user", "Hello") and said[2] == ("user", "Back again"), said
    assert [r for r, _ in said] == ["user", "assistant"] * 2
    assert [t["seq"] for t in transcript] == list(
        range(transcript[0]["seq"], transcript[0]["seq"] + 4)
    )
