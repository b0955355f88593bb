"""The inspector's ASGI app (`create_app`) and the server that runs it beside a worker (`serve`).

`serve` binds the socket first (so port 0 works and a busy port fails at once), then runs
uvicorn on the running event loop without touching signal handlers: the command that owns the
loop (``cairn ui``, ``cairn dev``) decides what Ctrl-C does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator, Generator
from functools import partial
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cairn.codec import EncryptionCodec
from cairn.subject_codec import SubjectCodec
from cairn.ui import codec_endpoint
from cairn.ui.actions import Actions
from cairn.ui.config import UIConfig
from cairn.ui.pages import Pages
from cairn.ui.security import Gate
from memory import InvalidInput, MemoryStore, NotFound

STATIC = Path(__file__).parent / "static"


def create_app(store: MemoryStore, config: UIConfig) -> Starlette:
    """The inspector for ``store``: pages, confirmed actions, the codec endpoint and assets."""
    if isinstance(config.codec, EncryptionCodec):
        # Sessions' payloads are sealed under data keys in this store (crypto-shredding).
        config = dataclasses.replace(config, codec=SubjectCodec(config.codec, store))
    pages = Pages(store, config)
    actions = Actions(pages)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def bad_input(request: Request, exc: Exception) -> Response:
        return await pages.not_found(request, HTTPException(400, str(exc)))

    routes = [
        Route("/", pages.home),
        Route("/healthz", healthz),
        Route("/ns/{ns:path}", pages.namespace),
        Route("/entry/{ns:path}", pages.entry),
        Route("/workflows/{workflow_id:path}", pages.workflow),
        Route("/steps/{workflow_id:path}", pages.workflow_steps),
        Route("/sessions/{tenant}/{session}", pages.session),
        Route("/search", pages.search),
        Route("/fork", actions.fork_form, methods=["GET"]),
        Route("/fork", actions.fork, methods=["POST"]),
        Route("/forget", actions.forget_form, methods=["GET"]),
        Route("/forget", actions.forget, methods=["POST"]),
        Route("/codec/decode", partial(codec_endpoint.decode, config, store), methods=["POST"]),
        Route("/codec/decode", partial(codec_endpoint.preflight, config), methods=["OPTIONS"]),
        Route(
            "/codec/{namespace}/decode",
            partial(codec_endpoint.decode, config, store),
            methods=["POST"],
        ),
        Route(
            "/codec/{namespace}/decode",
            partial(codec_endpoint.preflight, config),
            methods=["OPTIONS"],
        ),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Gate, config=config)],
        exception_handlers={
            HTTPException: pages.not_found,
            NotFound: pages.not_found,
            InvalidInput: bad_input,
        },
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket at ``host:port`` (0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        raise OSError(f"the Cairn UI cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The command running this server owns the signal handlers.
        yield


@contextlib.asynccontextmanager
async def serve(
    store: MemoryStore, config: UIConfig, *, port: int, sock: socket.socket | None = None
) -> AsyncIterator[str]:
    """Serve the inspector until the block exits; yields its base URL.

    Args:
        store: The memory to show.
        config: What the server allows and links to.
        port: The port to bind (0: any free one), unless ``sock`` is given.
        sock: A socket already bound with `bind` (when its URL had to be known earlier).

    Raises:
        OSError: The address cannot be bound (the message names it).
    """
    sock = sock or bind(config.host, port)
    host = f"[{config.host.strip('[]')}]" if ":" in config.host else config.host
    url = f"http://{host}:{sock.getsockname()[1]}"
    app = create_app(store, config)
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]), name="cairn-ui")
    try:
        while not server.started:
            if task.done():
                task.result()
                raise OSError(f"the Cairn UI stopped while starting at {url}")
            await asyncio.sleep(0.02)
        yield url
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
