"""The one mapping from the activities' errors to Temporal failures: fail at once, or retry.

Every activity runs its body inside `temporal_failures()`, which applies `temporal_failure`::

    fail at once (ApplicationError, non_retryable=True): retrying changes nothing
        InvalidInput (ValueTooLarge too), AccessDenied, NotFound      memory caller mistakes
        StoreMismatch                                                 a worker on another store
        UnknownAgent, pydantic ValidationError                        bad agent, tool or value
        ModelRequestError, ModelProtocolError, UnknownModel           provider 4xx, bad body, id
        DBAPIError the memory layer did not classify as transient     schema, role, constraint
    retry (ApplicationError, retryable)
        ModelUnavailable          provider 408/409/429/5xx, timeout; waits the provider's delay
        ConflictError             nothing was applied; the next attempt reads the newer state
    propagate unchanged (Temporal retries)
        StoreUnavailable and anything unexpected

Two failures arise before any Cairn code can map them, so `CairnFailureConverter`, the failure
converter of Cairn's data converter (client and worker), applies `boundary_failure` to every
exception it converts:

- an activity input that does not decode into its contract: temporalio's worker raises a
  retryable ``ApplicationError("Failed decoding arguments")`` caused by the converter's error;
  it becomes a non-retryable ``MalformedInput`` (the same payload fails on every attempt);
- a workflow input or update argument that fails its contract: a pydantic `ValidationError`
  the workflow fails with, or the update is refused with.

Both are then described as every activity failure is: by field and rule, never quoting the
input (pydantic's own message quotes it, and links to its docs).

Failure messages never quote the data that caused them: a validation error is described by
field and problem, a database error by its type, SQLSTATE and the driver's first line, never
SQLAlchemy's rendering (which lists the statement's parameters, that is, memory values). Model
errors format their own safe message (see `activities.llm.errors`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import ValidationError
from temporalio.api.failure.v1 import Failure
from temporalio.converter import (
    DefaultFailureConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadConverter,
)
from temporalio.exceptions import ApplicationError

from activities.llm import ModelError, ModelUnavailable
from activities.registry import UnknownAgent
from memory.errors import AccessDenied, ConflictError, InvalidInput, NotFound, StoreMismatch

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError

CALLER_MISTAKES: tuple[type[Exception], ...] = (
    InvalidInput,
    AccessDenied,
    NotFound,
    StoreMismatch,
    UnknownAgent,
    ValidationError,
)
"""Errors of the request itself: the same attempt fails the same way however often it runs."""


def failure_message(error: BaseException) -> str:
    """An error's message for its Temporal failure.

    A pydantic validation error is described by field and rule only: its own message quotes
    the offending input, which may be a memory value or a secret; and a rule's message may
    quote the value it refused (a validator's, or pydantic's for a union tag), so quoted text
    that occurs in the input becomes ``<value>``.
    """
    if not isinstance(error, ValidationError):
        return str(error)
    problems = [
        f"{'.'.join(str(part) for part in e['loc']) or 'input'}: {_rule(e['msg'], e['input'])}"
        for e in error.errors(include_url=False, include_context=False)
    ]
    count = error.error_count()
    shown = "; ".join(problems[:10]) + ("; ..." if count > 10 else "")
    return f"{count} validation error{'s' if count != 1 else ''} for {error.title}: {shown}"


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"')


def _rule(message: str, refused: object) -> str:
    given = repr(refused)

    def redact(quoted: re.Match[str]) -> str:
        return "<value>" if quoted[0][1:-1] in given else quoted[0]

    return _QUOTED.sub(redact, message)


def _database_failure(error: DBAPIError) -> ApplicationError:
    # The memory layer raises StoreUnavailable for what is transient; what reaches here is the
    # schema missing or behind, a role that may not write, a broken constraint.
    driver = error.orig if error.orig is not None else error
    code = getattr(driver, "sqlstate", None)
    lines = str(driver).strip().splitlines()
    reason = f": {lines[0]}" if lines else ""
    where = f", SQLSTATE {code}" if code else ""
    return ApplicationError(
        f"memory database error ({type(driver).__name__}{where}){reason}",
        type="DatabaseError",
        non_retryable=True,
    )


def temporal_failure(error: Exception) -> Exception:
    """What Temporal should see for ``error`` raised by an activity; see the module docstring.

    Returns:
        An `ApplicationError` typed by the error's class name (``"DatabaseError"`` for database
        errors), or ``error`` itself when it should propagate as it is.
    """
    if isinstance(error, ApplicationError):
        return error
    if isinstance(error, CALLER_MISTAKES):
        return ApplicationError(
            failure_message(error), type=type(error).__name__, non_retryable=True
        )
    # Only a loaded SQLAlchemy can have raised one: importing it here would make every
    # importer of `activities` (workflows included) load the database layer.
    sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_errors is not None and isinstance(error, sqlalchemy_errors.DBAPIError):
        return _database_failure(error)
    if isinstance(error, ModelError):
        delay = error.retry_after if isinstance(error, ModelUnavailable) else None
        return ApplicationError(
            str(error),
            type=type(error).__name__,
            non_retryable=not error.retryable,
            next_retry_delay=timedelta(seconds=delay) if delay else None,
        )
    if isinstance(error, ConflictError):
        return ApplicationError(str(error), type="ConflictError")
    return error


DECODE_FAILURE = "Failed decoding arguments"
"""The message of the error temporalio's worker raises when an activity's input fails to decode."""


def boundary_failure(error: BaseException) -> BaseException:
    """What Temporal should see for ``error``, raised where no activity code could map it."""
    if isinstance(error, ValidationError):
        return ApplicationError(failure_message(error), type="ValidationError", non_retryable=True)
    if not isinstance(error, ApplicationError):
        return error
    if error.message != DECODE_FAILURE or error.non_retryable:
        return error
    cause = error.__cause__
    # A converter error other than validation is named by type: its text may quote the payload.
    why = (
        failure_message(cause)
        if isinstance(cause, ValidationError)
        else (type(cause).__name__ if cause is not None else "undecodable")
    )
    return ApplicationError(
        f"malformed activity input: {why}", type="MalformedInput", non_retryable=True
    )


class CairnFailureConverter(DefaultFailureConverter):
    """The default failure converter, applying `boundary_failure` first."""

    def to_failure(
        self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure
    ) -> None:
        """See `DefaultFailureConverter.to_failure`."""
        super().to_failure(boundary_failure(exception), payload_converter, failure)


class CairnFailureConverterWithEncodedAttributes(
    CairnFailureConverter, DefaultFailureConverterWithEncodedAttributes
):
    """`CairnFailureConverter` whose messages and traces are encoded (encrypted by the codec)."""


@contextmanager
def temporal_failures() -> Iterator[None]:
    """Raise what `temporal_failure` makes of any error the block raises.

    The mapped failure drops the original's traceback and cause (``from None``): those can
    carry an API key, a request's content or a memory value into the workflow's history.
    """
    try:
        yield
    except Exception as error:
        failure = temporal_failure(error)
        if failure is error:
            raise
        raise failure from None
