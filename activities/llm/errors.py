"""Errors raised by the model adapters.

Every failure of a model call is one of these, and each formats its own message::

    ModelError                   base class; `retryable` says whether a retry can help
    ├── ModelUnavailable         HTTP 408, 409, 429 or 5xx, timeout, no connection: retry later
    ├── ModelRequestError        any other 4xx, bad credentials, an exhausted script: do not retry
    ├── ModelProtocolError       the provider answered 2xx with a body we cannot read: do not retry
    └── UnknownModel             the model id is malformed, unknown or not configured: do not retry

Which of the first two a provider's HTTP error becomes follows the SDKs' own retry rule (those
retries are off; Temporal's replace them): the provider's ``x-should-retry`` header when present,
else the status.

Messages name the provider, the model, the HTTP status, the provider's short error code and its
request id. They never carry the API key, the request content or the provider's free-text error
message (OpenAI's 401 message, for one, quotes part of the key back).
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import ClassVar

# Provider error codes and request ids are short tokens; anything else is dropped, never echoed.
_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,80}")


def _token(value: object) -> str | None:
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def _describe(status: int | None, code: str | None, request_id: str | None, reason: str) -> str:
    parts: list[str] = []
    if status is not None:
        try:
            parts.append(f"HTTP {status} {HTTPStatus(status).phrase}")
        except ValueError:
            parts.append(f"HTTP {status}")
    if reason:
        parts.append(reason)
    if code := _token(code):
        parts.append(f"code {code}")
    text = ", ".join(parts) or "no details"
    if request_id := _token(request_id):
        text += f" (request {request_id})"
    return text


class ModelError(Exception):
    """Base class of every error raised by a model adapter."""

    retryable: ClassVar[bool] = False
    """Whether calling the model again, unchanged, can succeed."""


class ModelUnavailable(ModelError):
    """The provider could not serve the call now (rate limit, overload, timeout, network).

    Attributes:
        provider: Provider name, e.g. ``"openai"``.
        model: The provider's model name.
        status: The HTTP status, or None when no response arrived.
        retry_after: Seconds the provider asked callers to wait, when it said.
        request_id: The provider's request id, when it sent one.
    """

    retryable: ClassVar[bool] = True

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        status: int | None = None,
        reason: str = "",
        code: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status = status
        self.retry_after = retry_after
        self.request_id = _token(request_id)
        message = f"{provider} model {model!r} is unavailable: "
        message += _describe(status, code, request_id, reason)
        if retry_after is not None:
            message += f"; retry after {retry_after:g}s"
        super().__init__(message)


class ModelRequestError(ModelError):
    """The provider refused the request as made (bad request, credentials, permissions, size).

    Attributes:
        provider: Provider name, e.g. ``"anthropic"``.
        model: The provider's model name.
        status: The HTTP status, or None when the refusal came before any request.
        request_id: The provider's request id, when it sent one.
    """

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        status: int | None = None,
        reason: str = "",
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status = status
        self.request_id = _token(request_id)
        super().__init__(
            f"{provider} rejected the request to model {model!r}: "
            + _describe(status, code, request_id, reason)
        )


class ModelProtocolError(ModelError):
    """The provider answered with success but the body does not have the expected shape.

    Attributes:
        provider: Provider name.
        model: The provider's model name.
        reason: What was wrong with the body (never the body itself).
    """

    def __init__(self, provider: str, model: str, *, reason: str) -> None:
        self.provider = provider
        self.model = model
        self.reason = reason
        super().__init__(f"{provider} sent a malformed response for model {model!r}: {reason}")


class UnknownModel(ModelError, ValueError):
    """A model id cannot be resolved to a usable client.

    Attributes:
        model_id: The id as given, e.g. ``"openai:gpt-4o"``.
        reason: Why it cannot be used (unknown provider, missing name, missing API key).
    """

    def __init__(self, model_id: str, *, reason: str) -> None:
        self.model_id = model_id
        self.reason = reason
        super().__init__(f"cannot use model {model_id!r}: {reason}")
