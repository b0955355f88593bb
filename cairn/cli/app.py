"""``cairn``: the command for people: dev server, demo, running workflows, inspecting memory.

This module and ``worker.py`` are the only ones that read the environment; everything below
them takes explicit arguments. Expected failures (an unreachable server or database, a missing
workflow or key, bad input) print one line on stderr and exit 1; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from cairn import DEFAULT_MEMORY_URL
from cairn.cli.errors import reported
from cairn.cli.memory_commands import JsonFlag, MemoryUrl, memory_app
from cairn.mcp.command import mcp

# The command modules are imported inside the commands: `cairn --help` and the memory
# inspector must not wait for Temporal's worker and the model SDKs to load.
if TYPE_CHECKING:
    from cairn.cli.memory import View
    from cairn.runtime import Settings
    from cairn.telemetry import Telemetry
    from cairn.ui import UIConfig

T = TypeVar("T")

STATE_DIR = Path(".cairn")
DEFAULT_CODEC_PORT = 8081

app = typer.Typer(
    name="cairn",
    help="Cairn: durable, versioned shared memory for multi-agent Temporal workflows.\n\n"
    "Start with `cairn demo`; `cairn dev` keeps a local server and worker running.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
session_app = typer.Typer(
    help="Talk to a conversation (one long-lived SessionWorkflow per session).",
    no_args_is_help=True,
)
app.add_typer(session_app, name="session")

stdout = Console(width=None if sys.stdout.isatty() else 120)

Tenant = Annotated[str, typer.Option("--tenant", help="The tenant the session belongs to.")]


class Trace(StrEnum):
    """Span exporters ``cairn dev --trace`` accepts."""

    console = "console"


# -- errors ---------------------------------------------------------------------------------


def _debug(ctx: typer.Context) -> bool:
    return bool(ctx.find_root().params.get("debug"))


@contextlib.contextmanager
def _errors(ctx: typer.Context) -> Iterator[None]:
    with reported(debug=_debug(ctx)):
        yield


def _run(ctx: typer.Context, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``; SIGINT and SIGTERM cancel it, so its cleanup (servers, workers) runs."""

    async def main() -> T:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        return await work()

    logging.basicConfig(
        level=logging.DEBUG if _debug(ctx) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with _errors(ctx):
        return asyncio.run(main())


# -- environment ----------------------------------------------------------------------------


def _settings() -> Settings:
    from cairn.runtime import settings_from_env

    return settings_from_env()


def _memory_url(option: str | None) -> str:
    return option or os.environ.get("CAIRN_MEMORY_URL") or DEFAULT_MEMORY_URL


def _ui_port() -> int:
    from cairn.devserver import DEFAULT_UI_PORT

    raw = os.environ.get("CAIRN_UI_PORT", "").strip()
    if not raw:
        return DEFAULT_UI_PORT
    if not raw.isdigit() or int(raw) > 65535:
        raise ValueError(f"CAIRN_UI_PORT must be a port number (0: any free port), got {raw!r}")
    return int(raw)


def _inspector(keys: str | None, *, write: bool, host: str = "127.0.0.1") -> UIConfig:
    """The Cairn UI's settings: CAIRN_UI_TOKEN, CAIRN_TEMPORAL_UI_URL, TEMPORAL_NAMESPACE."""
    from cairn.ui import UIConfig
    from cairn.ui.command import codec_from_keys

    return UIConfig(
        host=host,
        token=os.environ.get("CAIRN_UI_TOKEN", "").strip() or None,
        write=write,
        temporal_ui_url=os.environ.get("CAIRN_TEMPORAL_UI_URL") or "http://localhost:8233",
        temporal_namespace=os.environ.get("TEMPORAL_NAMESPACE") or "default",
        codec=codec_from_keys(keys),
    )


@contextlib.contextmanager
def _tracing() -> Iterator[Telemetry]:
    """OpenTelemetry from OTEL_*, so a workflow started here is one trace with its steps.

    Temporal's own log lines go to stderr with the rest of the logs, never into ``--json``.
    Spans still buffered are exported on exit.
    """
    from cairn.telemetry import configure

    tracing = configure(os.environ, core_logs_to_python=True)
    try:
        yield tracing
    finally:
        tracing.shutdown()


def _login() -> str:
    """Who decides an approval unless ``--by`` says: the login name."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "someone"


def _import_from_cwd() -> None:
    """Let CAIRN_EXTENSIONS name modules in the current directory, as `python -m` would."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _model() -> str:
    """The model the demo and new sessions use: a real one when its API key is set."""
    if os.environ.get("OPENAI_API_KEY"):
        return f"openai:{os.environ.get('OPENAI_MODEL') or 'gpt-4o-mini'}"
    if os.environ.get("ANTHROPIC_API_KEY"):
        return f"anthropic:{os.environ.get('ANTHROPIC_MODEL') or 'claude-3-5-haiku-latest'}"
    return "scripted"


def _read_input(value: str) -> str:
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read --input file {str(path)!r}: {error.strerror}") from None


def _show(view: View, as_json: bool) -> None:
    data, renderable = view
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        stdout.print(renderable, highlight=False)


# -- commands -------------------------------------------------------------------------------


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logs on errors.")
    ] = False,
) -> None:
    pass


@app.command()
def dev(
    ctx: typer.Context,
    trace: Annotated[
        Trace | None, typer.Option("--trace", help="Print OpenTelemetry spans (console).")
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Let the Cairn UI fork and forget (confirmed).")
    ] = False,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Run a worker here (with CAIRN_EXTENSIONS), or leave that to yours.",
        ),
    ] = True,
) -> None:
    """Run a local Temporal dev server (UI on :8233), a worker and the Cairn UI until Ctrl-C.

    The worker loads your code as `python worker.py` does: CAIRN_EXTENSIONS=myteam cairn dev
    (modules in the current directory are found). With --no-worker, run your own worker
    against the server instead; never both on one task queue.

    The Cairn UI (memory inspector) listens on 127.0.0.1:8234 and serves the Temporal UI's
    codec endpoint, so the Temporal UI shows each step's output text beside its reference.

    Reuses a server already answering at TEMPORAL_ADDRESS (default localhost:7233); otherwise
    starts `temporal server start-dev` there with its state in .cairn/temporal.db (UI port:
    CAIRN_UI_PORT, 0 for any free one). The worker runs in this process against
    CAIRN_MEMORY_URL (default sqlite:///.cairn/memory.db). Ctrl-C or SIGTERM stops the worker
    and the server it started.
    """

    async def work() -> None:
        from cairn.cli.server import dev
        from cairn.telemetry import configure

        tracing = configure(os.environ, console=trace is Trace.console)
        settings = _settings()
        _import_from_cwd()
        keys = settings.encryption_keys.get_secret_value() if settings.encryption_keys else None
        try:
            await dev(
                settings,
                ui_port=_ui_port(),
                state_dir=STATE_DIR,
                console=stdout,
                tracing=tracing,
                inspector=_inspector(keys, write=write),
                worker=worker,
            )
        finally:
            tracing.shutdown()

    _run(ctx, work)


@app.command()
def demo(ctx: typer.Context) -> None:
    """Run the demo: a research team, then a support agent that remembers you across sessions.

    Starts (or reuses) the dev server at TEMPORAL_ADDRESS and runs a worker in this process;
    memory goes to .cairn/memory.db (CAIRN_MEMORY_URL). Uses the offline scripted model
    unless OPENAI_API_KEY (model: OPENAI_MODEL) or ANTHROPIC_API_KEY (model: ANTHROPIC_MODEL)
    is set.
    """

    async def work() -> None:
        from cairn.cli.demo import run_demo

        settings, ui_port, model = _settings(), _ui_port(), _model()
        await run_demo(settings, model=model, ui_port=ui_port, state_dir=STATE_DIR, console=stdout)

    _run(ctx, work)


@app.command("run")
def run_workflow(
    ctx: typer.Context,
    workflow: Annotated[
        str,
        typer.Argument(
            help="chain (a ChainSpec), session (a SessionInput), or the type of any workflow "
            "a worker registers, e.g. HaikuWorkflow.",
            show_default=False,
        ),
    ],
    input_: Annotated[
        str,
        typer.Option("--input", "-i", help="The workflow's input: JSON, or @path to a JSON file."),
    ],
    workflow_id: Annotated[
        str | None, typer.Option("--id", help="Workflow id [default: <name>-<random>].")
    ] = None,
    task_queue: Annotated[
        str | None,
        typer.Option("--task-queue", help="[default: CAIRN_TASK_QUEUE, else cairn]"),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the result and print it.")
    ] = True,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="chain only: the user it acts for; its id becomes chain:<tenant>:<user>:"
            "<name>-<random>, and forgetting the user shreds its history.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a workflow, follow it and print its result; exit 1 if it fails or is rejected.

    chain: the input is a ChainSpec (a team as data); prints each step's agent, verdict,
    commit and output, and how to answer an approval it waits for (`cairn approve`).
    With --user (or the spec's user) it acts for that user.
    session: the input is a SessionInput; starts the session (or finds it running). Any
    other name is a workflow type, e.g. one of yours loaded by CAIRN_EXTENSIONS, given its
    argument as JSON. Examples: cairn run chain --input @team.json;
    cairn run HaikuWorkflow --input '"frogs"'
    """
    completed = True

    async def work() -> View:
        nonlocal completed
        text = _read_input(input_)
        from cairn.cli import runs as cli_runs
        from cairn.cli import sessions as cli_sessions
        from cairn.cli.start import run_any

        settings = _settings()
        if task_queue:
            settings = settings.model_copy(update={"task_queue": task_queue})
        if user is not None and workflow != "chain":
            raise ValueError("--user applies to chains; a session's user is its input's user")
        with _tracing() as tracing:
            if workflow == "chain":
                console = None if as_json else stdout
                view, completed = await cli_runs.run_chain(
                    settings,
                    text,
                    workflow_id=workflow_id,
                    console=console,
                    tracing=tracing,
                    wait=wait,
                    user=user,
                )
                return view
            if workflow == "session":
                return await cli_sessions.run_session(settings, text, workflow_id=workflow_id)
            client = await cli_runs.client_for(settings, tracing)
            return await run_any(
                client,
                workflow,
                text,
                workflow_id=workflow_id,
                task_queue=settings.task_queue,
                wait=wait,
            )

    _show(_run(ctx, work), as_json)
    if not completed:
        raise typer.Exit(1)


@app.command("approve")
def approve(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The chain's workflow id.")],
    approval: Annotated[str, typer.Argument(help="The approval node's name, e.g. publish.")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving.")] = False,
    edit: Annotated[
        str | None,
        typer.Option("--edit", help="Replace the output the approval edits with this text."),
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who decides [default: your login name].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer an approval a chain waits for (its `decide` update).

    Example: cairn approve brief-3fa2c1d0 publish --edit "Prices rise 5% in May."
    An edit becomes a new version of the output the approval node `edits`.
    """

    async def work() -> View:
        from cairn.cli.approvals import decide
        from cairn.runtime import connect
        from workflows.contracts import Decision

        decision = Decision(approval=approval, approve=not reject, edit=edit, by=by or _login())
        client = await connect(_settings())
        return await decide(client, workflow_id, decision)

    _show(_run(ctx, work), as_json)


@session_app.command("send")
def session_send(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="The session's name, e.g. s-42.")],
    message: Annotated[str, typer.Argument(help="What the user says.")],
    tenant: Tenant = "acme",
    user: Annotated[
        str | None, typer.Option("--user", help="The user, whose memory spans sessions.")
    ] = None,
    message_id: Annotated[
        str | None,
        typer.Option("--message-id", help="Idempotency id: resending it returns the first reply."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Send a message to a session and print the agent's reply (starts it on first use).

    The session runs the support agent on the offline scripted model unless OPENAI_API_KEY
    or ANTHROPIC_API_KEY is set. Example: cairn session send s-42 "Hi, my name is Ada" --user u-1
    """

    async def work() -> View:
        from cairn.cli import sessions as cli_sessions

        with _tracing() as tracing:
            return await cli_sessions.session_send_turn(
                _settings(),
                tenant=tenant,
                session=session,
                user=user,
                text=message,
                message_id=message_id,
                model=_model(),
                tracing=tracing,
            )

    _show(_run(ctx, work), as_json)


@session_app.command("show")
def session_show(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="The session's name.")],
    tenant: Tenant = "acme",
    last: Annotated[int, typer.Option("--last", min=1, help="Transcript turns to show.")] = 10,
    memory_url: MemoryUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a session's state (its `state` query) and the last turns of its transcript."""

    async def work() -> View:
        from cairn.cli import sessions as cli_sessions

        url = _memory_url(memory_url)
        return await cli_sessions.session_show_state(
            _settings(), url, tenant=tenant, session=session, last=last
        )

    _show(_run(ctx, work), as_json)


@session_app.command("end")
def session_end(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="The session's name.")],
    tenant: Tenant = "acme",
    as_json: JsonFlag = False,
) -> None:
    """End a session (after any turn in progress) and wait for it to close."""

    async def work() -> View:
        from cairn.cli import sessions as cli_sessions

        return await cli_sessions.session_close(_settings(), tenant=tenant, session=session)

    _show(_run(ctx, work), as_json)


def _run_and_show(ctx: typer.Context, work: Callable[[], Awaitable[View]], as_json: bool) -> None:
    _show(_run(ctx, work), as_json)


app.add_typer(memory_app(_run_and_show, _memory_url), name="memory")
app.command("mcp")(mcp)


@app.command("ui")
def ui(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0: any free port.")] = 8234,
    write: Annotated[
        bool, typer.Option("--write", help="Allow fork and forget (confirmed, CSRF-checked).")
    ] = False,
    memory_url: MemoryUrl = None,
) -> None:
    """Serve the memory inspector: namespaces, versions and diffs, time travel, step lineage.

    Read-only unless --write. Binding beyond loopback needs CAIRN_UI_TOKEN. Links workflows to
    the Temporal UI at CAIRN_TEMPORAL_UI_URL (default http://localhost:8233), and answers that
    UI's codec calls (decrypting with CAIRN_ENCRYPTION_KEYS when set).
    """

    async def work() -> None:
        from cairn.ui.command import run_ui

        config = _inspector(os.environ.get("CAIRN_ENCRYPTION_KEYS"), write=write, host=host)
        await run_ui(_memory_url(memory_url), config, port=port, console=stdout)

    _run(ctx, work)


@app.command("codec-server")
def codec_server(ctx: typer.Context) -> None:
    """Serve Temporal's remote codec protocol so the UI and CLI can read encrypted payloads.

    Reads CAIRN_ENCRYPTION_KEYS and CAIRN_CODEC_TOKEN (both required), CAIRN_MEMORY_URL (where
    sessions' data keys are), CAIRN_CODEC_HOST
    (127.0.0.1), CAIRN_CODEC_PORT (8081; 0 picks a free port) and CAIRN_CODEC_CORS_ORIGINS
    (comma-separated UI origins, e.g. http://localhost:8233). Runs until Ctrl-C.
    """
    with _errors(ctx):
        from cairn.codec import EncryptionCodec, keys_from_env_value
        from cairn.codec_server import serve_codec
        from cairn.subject_codec import SubjectCodec

        keys = os.environ.get("CAIRN_ENCRYPTION_KEYS", "").strip()
        token = os.environ.get("CAIRN_CODEC_TOKEN", "").strip()
        if not keys:
            raise ValueError("CAIRN_ENCRYPTION_KEYS is not set: give the workers' 'id:key,...'")
        if not token:
            raise ValueError("CAIRN_CODEC_TOKEN is not set: give the bearer token clients send")
        raw_port = os.environ.get("CAIRN_CODEC_PORT", "").strip() or str(DEFAULT_CODEC_PORT)
        if not raw_port.isdigit() or int(raw_port) > 65535:
            raise ValueError(f"CAIRN_CODEC_PORT must be a port number, got {raw_port!r}")
        origins = os.environ.get("CAIRN_CODEC_CORS_ORIGINS", "")
        # Sessions' payloads are opened with their data keys, read from CAIRN_MEMORY_URL.
        codec = SubjectCodec(EncryptionCodec(*keys_from_env_value(keys)), _memory_url(None))
        server = serve_codec(
            codec,
            host=os.environ.get("CAIRN_CODEC_HOST", "").strip() or "127.0.0.1",
            port=int(raw_port),
            token=token,
            cors_origins=[o.strip() for o in origins.split(",") if o.strip()],
        )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    typer.echo(f"codec server listening on {server.url} (Ctrl-C stops it)")
    while not stop.wait(0.5):
        pass
    server.shutdown()
    typer.echo("codec server stopped")


@app.command("worker")
def run_worker(ctx: typer.Context) -> None:
    """Run a production worker: the same as `python worker.py` (configured by environment)."""
    # The process becomes the worker process itself, so its signals and exit code are the worker's.
    flags = ["--debug"] if _debug(ctx) else []
    os.execv(sys.executable, [sys.executable, "-m", "worker", *flags])


def main() -> None:
    """Entry point of the ``cairn`` console script."""
    try:
        app(prog_name="cairn")
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    # A process that used a Temporal client can abort while the interpreter finalizes, when a
    # thread of temporalio's Rust core releases Python objects at that moment
    # (temporalio/sdk-python#300): exit 134 after a command that succeeded. Every command has
    # closed what it opened by now, so the process ends here, without finalization.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away (`cairn ... | head`)
            stream.flush()
    logging.shutdown()
    os._exit(code or 0)


if __name__ == "__main__":
    main()
