"""The production worker process: ``python worker.py`` (configured by environment variables).

It registers every Cairn workflow and activity, connects to Temporal with Temporal's own
environment configuration (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
TLS settings and ``TEMPORAL_PROFILE`` profiles), opens the memory store, serves ``/healthz``
and ``/readyz``, and drains gracefully on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from sqlalchemy.engine import make_url

from activities import AgentRegistry
from cairn.runtime import (
    Settings,
    build_worker,
    connect,
    load_extensions,
    settings_from_env,
    store_embedders,
)
from cairn.telemetry import Telemetry
from cairn.telemetry import configure as configure_telemetry
from memory import MemoryStore, MemoryStoreError

log = logging.getLogger("cairn.worker")

ENV_HELP = """environment:
  TEMPORAL_ADDRESS            Temporal frontend host:port (default localhost:7233)
  TEMPORAL_NAMESPACE          Temporal namespace (default "default")
  TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE
                              Temporal Cloud and TLS settings (Temporal's env config)
  CAIRN_TASK_QUEUE            task queue (default "cairn")
  CAIRN_MEMORY_URL            sqlite:///path or postgresql+psycopg://... (default
                              sqlite:///.cairn/memory.db)
  CAIRN_MAX_CONCURRENT_STEPS  activities run at once by this worker (default 16)
  CAIRN_SHUTDOWN_GRACE        seconds to let running steps finish on SIGTERM (default 30)
  CAIRN_HEALTH_PORT           serve /healthz and /readyz on this port (default: off)
  CAIRN_ENCRYPTION_KEYS       "id:base64key,..." to encrypt payloads (first is active)
  CAIRN_EXTENSIONS            comma-separated modules defining `registry`, `workflows`
                              and/or `agent_activities` (an AgentActivities subclass)
  CAIRN_EMBEDDER              recall by meaning: offline, hashing or openai:<model>
                              (default: keyword search only)
  CAIRN_EMBED_NAMESPACES      comma-separated namespace patterns to embed (default: all)
  CAIRN_EMBED_DIMS            vector length of an openai:<model> not known to Cairn
  OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL
                              model providers
  OTEL_*                      OpenTelemetry exporters (nothing is exported when unset);
                              OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true puts
                              prompts and replies in spans (off by default)
"""


class Health:
    """``GET /healthz`` (process alive) and ``GET /readyz`` (connected, polling, not draining)."""

    def __init__(self) -> None:
        self.ready = False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            line = (await asyncio.wait_for(reader.readline(), 5)).decode("latin-1").split()
            path = line[1] if len(line) > 1 else ""
            ok = path == "/healthz" or (path == "/readyz" and self.ready)
            status = (
                "200 OK"
                if ok
                else ("503 Service Unavailable" if path == "/readyz" else "404 Not Found")
            )
            body = status.split(" ", 1)[1].encode()
            head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()

    @contextlib.asynccontextmanager
    async def serve(self, port: int | None) -> AsyncIterator[int | None]:
        """Serve on ``port`` (0 picks a free one) while the context is open; None: off."""
        if port is None:
            yield None
            return
        server = await asyncio.start_server(self._handle, "0.0.0.0", port)
        async with server:
            yield server.sockets[0].getsockname()[1]


async def serve(
    settings: Settings, registry: AgentRegistry | None = None, tracing: Telemetry | None = None
) -> None:
    """Run a worker until SIGTERM or SIGINT, then drain for ``shutdown_grace`` seconds."""
    registry = registry or AgentRegistry()
    extensions = load_extensions(settings, registry)
    health = Health()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with health.serve(settings.health_port):
        url = make_url(settings.memory_url)
        if url.get_backend_name() == "sqlite" and url.database:
            # The embedded default lives in .cairn/, which a fresh checkout does not have.
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        store = await MemoryStore.open(
            settings.memory_url,
            pool_size=min(settings.max_concurrent_steps, 32),
            embedders=store_embedders(settings),
        )
        try:
            client = await connect(settings, tracing, store=store)
            worker = build_worker(client, store, settings, registry, extensions=extensions)
            async with worker:
                health.ready = True
                log.info(
                    "worker polling task queue %r on %s (memory: %s)",
                    settings.task_queue,
                    settings.temporal_address,
                    store.engine.url.render_as_string(hide_password=True),
                )
                await stop.wait()
                health.ready = False
                log.info("draining: up to %.0fs for running steps", settings.shutdown_grace)
        finally:
            # Imported here: a worker that never resolved a provider model never loads the SDKs.
            from activities.llm.providers import close_model_clients

            await close_model_clients()
            await store.close()


class RedactFailures(logging.Filter):
    """Log exceptions by type and traceback only, never by message.

    Installed when payloads are encrypted: a failure's message may quote what the payloads
    carry (a memory value, a model's reply), and the failure converter encrypts it in Temporal,
    so the worker's own logs must not print it in the clear.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's exception (and any exception among its args) by its type."""
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redacted_traceback(record.exc_info[1])
            record.exc_info = None
        if isinstance(record.args, tuple):
            record.args = tuple(
                f"<{type(a).__name__}>" if isinstance(a, BaseException) else a for a in record.args
            )
        return True


def redacted_traceback(error: BaseException) -> str:
    """A traceback of ``error`` and its causes, with each exception's message left out."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    parts = [
        "Traceback (most recent call last):\n"
        + "".join(traceback.format_tb(e.__traceback__))
        + f"{type(e).__module__}.{type(e).__qualname__}: [message redacted: payloads are encrypted]"
        for e in reversed(chain)
    ]
    return "\n\nwhich caused:\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python worker.py``."""
    parser = argparse.ArgumentParser(
        prog="worker.py",
        description="Run a Cairn worker: every Cairn workflow and activity on one task queue.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    tracing = configure_telemetry(os.environ)
    try:
        settings = settings_from_env()
        if settings.encryption_keys is not None:
            for handler in logging.getLogger().handlers:
                handler.addFilter(RedactFailures())
        asyncio.run(serve(settings, tracing=tracing))
    except (ValueError, ConnectionError, MemoryStoreError, ImportError) as error:
        if args.debug:
            raise
        print(f"cairn worker: {error}", file=sys.stderr)
        return 2
    finally:
        tracing.shutdown()
    return 0


if __name__ == "__main__":
    exit_code = main()
    # temporalio's core can abort the interpreter's finalization after a clean run
    # (temporalio/sdk-python#300, exit 134): everything is closed by now, so skip it.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):
            stream.flush()
    logging.shutdown()
    os._exit(exit_code)
