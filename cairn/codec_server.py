"""HTTP server for Temporal's remote codec protocol, so the CLI and UI can show encrypted payloads.

``POST /encode`` and ``POST /decode`` take and return ``{"payloads": [...]}`` with payloads in
protobuf JSON form; the same routes answer under one leading path segment
(``/{namespace}/decode``), which is what the Temporal CLI's ``--codec-endpoint`` templating
produces. Both require ``Authorization: Bearer <token>``. ``OPTIONS`` answers CORS preflights for
the configured origins, and ``GET /healthz`` (no token, no data) is for container probes.

The server is the standard library's ``ThreadingHTTPServer``; the codec's coroutines run on one
event loop thread owned by the server. Logs carry method, path, status and error types only,
never payloads, headers or the token.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from cairn.codec import CodecError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "CodecServer", "serve_codec"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest request body accepted (Temporal caps one payload at 2 MB; base64 adds a third)."""

_CODEC_TIMEOUT_SECONDS = 30.0
_ALLOWED_HEADERS = "authorization, content-type, x-namespace"

_CodecFn = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


class _CodecHTTPServer(ThreadingHTTPServer):
    """Holds what the request handler needs; one instance per :class:`CodecServer`."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        codec: PayloadCodec,
        token: bytes,
        cors_origins: frozenset[str],
        loop: asyncio.AbstractEventLoop,
        max_body_bytes: int,
    ) -> None:
        self.codec = codec
        self.token = token
        self.cors_origins = cors_origins
        self.loop = loop
        self.max_body_bytes = max_body_bytes
        super().__init__(address, _CodecRequestHandler)


class _CodecRequestHandler(BaseHTTPRequestHandler):
    server_version = "cairn-codec-server"
    sys_version = ""
    # A client that stops sending mid-request must not hold a thread forever.
    timeout = 30

    @property
    def _server(self) -> _CodecHTTPServer:
        return cast(_CodecHTTPServer, self.server)

    def _route(self) -> _CodecFn | None:
        segments = [s for s in urlsplit(self.path).path.split("/") if s]
        if not 1 <= len(segments) <= 2:
            return None
        if segments[-1] == "encode":
            return self._server.codec.encode
        if segments[-1] == "decode":
            return self._server.codec.decode
        return None

    def do_OPTIONS(self) -> None:
        """Answer a CORS preflight; browsers send no credentials with it."""
        if self._route() is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        self.send_response(HTTPStatus.NO_CONTENT)
        self._send_cors_headers(preflight=True)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        """Serve the liveness probe."""
        if urlsplit(self.path).path == "/healthz":
            self._send_json(HTTPStatus.OK, {"status": "ok"})
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def do_POST(self) -> None:
        """Encode or decode a batch of payloads."""
        codec_fn = self._route()
        if codec_fn is None:
            self._reject(HTTPStatus.NOT_FOUND, "not found")
            return
        if not self._authorized():
            self._reject(HTTPStatus.UNAUTHORIZED, "missing or invalid bearer token")
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self._reject(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "expected application/json")
            return
        body = self._read_body()
        if body is None:
            return
        try:
            request = json_format.Parse(body, Payloads())
        except (json_format.ParseError, UnicodeDecodeError):
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "body is not a payloads object"})
            return
        future = asyncio.run_coroutine_threadsafe(
            _call(codec_fn, list(request.payloads)), self._server.loop
        )
        try:
            result = future.result(timeout=_CODEC_TIMEOUT_SECONDS)
        except TimeoutError:
            future.cancel()
            logger.error("codec request timed out after %s s", _CODEC_TIMEOUT_SECONDS)
            self._send_json(HTTPStatus.GATEWAY_TIMEOUT, {"error": "codec timed out"})
            return
        except CodecError as err:
            # The codec's own messages name key ids at most, and tell the operator what to fix.
            logger.warning("codec request failed: %s", type(err).__name__)
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(err)})
            return
        except Exception as err:
            logger.error("codec request failed: %s", type(err).__name__)
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "codec failure"})
            return
        self._send_json(
            HTTPStatus.OK,
            {"payloads": [json_format.MessageToDict(payload) for payload in result]},
        )

    def _authorized(self) -> bool:
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode(), self._server.token)

    def _read_body(self) -> bytes | None:
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            self._reject(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
            return None
        try:
            length = int(raw_length)
        except ValueError:
            self._reject(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
            return None
        if not 0 <= length <= self._server.max_body_bytes:
            self._reject(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
            return None
        return self.rfile.read(length)

    def _reject(self, status: HTTPStatus, message: str) -> None:
        # The body was not read, so the connection cannot carry another request.
        self.close_connection = True
        extra = {"WWW-Authenticate": "Bearer"} if status == HTTPStatus.UNAUTHORIZED else {}
        self._send_json(status, {"error": message}, extra_headers=extra)

    def _send_json(
        self,
        status: HTTPStatus,
        body: dict[str, Any],
        *,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        encoded = json.dumps(body).encode()
        self.send_response(status)
        self._send_cors_headers(preflight=False)
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(encoded)

    def _send_cors_headers(self, *, preflight: bool) -> None:
        origin = self.headers.get("Origin")
        self.send_header("Vary", "Origin")
        if origin is None or origin not in self._server.cors_origins:
            return
        self.send_header("Access-Control-Allow-Origin", origin)
        self.send_header("Access-Control-Allow-Credentials", "true")
        if preflight:
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", _ALLOWED_HEADERS)
            self.send_header("Access-Control-Max-Age", "600")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log method, path (without query) and status; never headers or bodies."""
        logger.info("%s %s %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:
        """Route the standard library's diagnostics to the module logger."""
        logger.debug(format, *args)


async def _call(codec_fn: _CodecFn, payloads: list[Payload]) -> list[Payload]:
    return await codec_fn(payloads)


class CodecServer:
    """A running codec server; stop it with :meth:`shutdown` or by leaving a ``with`` block."""

    def __init__(self, httpd: _CodecHTTPServer, loop: asyncio.AbstractEventLoop) -> None:
        self._httpd = httpd
        self._loop = loop
        self._loop_thread = threading.Thread(
            target=loop.run_forever, name="codec-server-loop", daemon=True
        )
        # shutdown() waits for the serving loop's next poll: keep that wait short.
        self._serve_thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="codec-server",
            daemon=True,
        )
        self._lock = threading.Lock()
        self._stopped = False
        self._loop_thread.start()
        self._serve_thread.start()

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when started with port 0)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL to give the Temporal CLI (``--codec-endpoint``) or UI."""
        return f"http://{self.host}:{self.port}"

    def wait(self) -> None:
        """Block until the server is shut down (from another thread or a signal handler)."""
        self._serve_thread.join()

    def shutdown(self) -> None:
        """Stop serving, close the socket and stop the codec's event loop. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._serve_thread.join()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join()
        self._loop.close()

    def __enter__(self) -> CodecServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def serve_codec(
    codec: PayloadCodec,
    *,
    host: str = "127.0.0.1",
    port: int = 8081,
    token: str,
    cors_origins: Iterable[str] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> CodecServer:
    """Start a codec server in background threads and return it.

    Args:
        codec: The codec to apply, normally the workers' ``EncryptionCodec``.
        host: Address to bind; keep the loopback default unless a proxy or the network policy
            restricts who can reach it.
        port: Port to bind; 0 picks a free one (see :attr:`CodecServer.port`).
        token: The bearer token every encode/decode request must present.
        cors_origins: Exact browser origins allowed to call the server, such as the Temporal
            UI's ``http://localhost:8080``.
        max_body_bytes: Largest request body accepted.

    Returns:
        The running server.

    Raises:
        ValueError: The token is empty or not a plain ASCII string, or an origin is ``*``.
        OSError: The address cannot be bound.
    """
    if not token or not token.isascii() or not token.isprintable() or token != token.strip():
        raise ValueError("the codec server token must be a non-empty printable ASCII string")
    origins = frozenset(cors_origins)
    if "*" in origins:
        raise ValueError("list the Temporal UI origins explicitly; '*' is not accepted")
    loop = asyncio.new_event_loop()
    try:
        httpd = _CodecHTTPServer(
            (host, port),
            codec=codec,
            token=token.encode(),
            cors_origins=origins,
            loop=loop,
            max_body_bytes=max_body_bytes,
        )
    except BaseException:
        loop.close()
        raise
    server = CodecServer(httpd, loop)
    logger.info("codec server listening on %s", server.url)
    return server
