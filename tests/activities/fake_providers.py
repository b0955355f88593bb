"""A real local HTTP server speaking the OpenAI chat-completions and Anthropic messages formats.

Tests queue responses and read back the requests the SDKs sent. Response bodies use the field
names of the SDKs' own types (`openai.types.chat.ChatCompletion`, `anthropic.types.Message`).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Canned:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None  # the response waits until this is set


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client_port: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeProvider:
    """One provider endpoint on 127.0.0.1, on a free port, serving queued responses in order."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._queue: deque[Canned] = deque()
        self._lock = threading.Lock()
        self._holds: list[threading.Event] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with provider._lock:
                    provider.requests.append(
                        Received(
                            method="POST",
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            client_port=self.client_address[1],
                        )
                    )
                    canned = provider._queue.popleft() if provider._queue else None
                if canned is None:
                    canned = Canned(418, b'{"error": "the fake provider has no response queued"}')
                if canned.hold is not None:
                    canned.hold.wait(timeout=30)
                self.send_response(canned.status)
                headers = {"content-type": "application/json", **canned.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up is expected in some tests

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        # A short poll interval keeps shutdown() (one poll at most) from slowing every test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Queue a JSON response (or raw bytes, sent as they are)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self._queue.append(Canned(status, data, headers or {}))

    def reply_after(self, hold: threading.Event, body: Any) -> None:
        """Queue a 200 response that is only sent once `hold` is set."""
        self._holds.append(hold)
        self._queue.append(Canned(200, json.dumps(body).encode(), hold=hold))

    def close(self) -> None:
        for hold in self._holds:
            hold.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def openai_completion(
    text: str | None = "Hello.",
    *,
    tool_calls: Sequence[tuple[str, str, str]] = (),
    finish_reason: str | None = None,
    model: str = "gpt-test-2025",
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
) -> dict[str, Any]:
    """A chat.completion body; `tool_calls` are (id, name, arguments as a JSON string)."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text,
        "refusal": None,
        "annotations": [],
    }
    if tool_calls:
        message["tool_calls"] = [
            {"id": id_, "type": "function", "function": {"name": name, "arguments": args}}
            for id_, name, args in tool_calls
        ]
    return {
        "id": "chatcmpl-fake1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def openai_error(message: str, *, type: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


def anthropic_message(
    text: str | None = "Hello.",
    *,
    tool_uses: Sequence[tuple[str, str, dict[str, Any]]] = (),
    stop_reason: str | None = None,
    model: str = "claude-test-2025",
    input_tokens: int = 13,
    output_tokens: int = 5,
    cache_read_input_tokens: int = 0,
) -> dict[str, Any]:
    """A Messages API body; `tool_uses` are (id, name, input)."""
    content: list[dict[str, Any]] = []
    if text is not None:
        content.append({"type": "text", "text": text, "citations": None})
    content.extend(
        {"type": "tool_use", "id": id_, "name": name, "input": input_}
        for id_, name, input_ in tool_uses
    )
    return {
        "id": "msg_fake1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if tool_uses else "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cache_read_input_tokens,
        },
    }


def anthropic_error(message: str, *, type: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": type, "message": message},
        "request_id": "req_fake1",
    }
