"""How ``cairn`` reports failures: one line on stderr saying what is wrong and how to fix it.

Expected failures (an unreachable server or database, a missing workflow or key, bad input)
exit 1 without a traceback; ``--debug`` re-raises them so the traceback shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from temporalio.service import RPCError


class CommandError(Exception):
    """An expected failure whose message is complete: what happened and what to do now."""


def one_line(text: str) -> str:
    """``text`` on one line: its first few non-blank lines joined."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines[:3]) if lines else ""


@contextlib.contextmanager
def workflow_must_exist(workflow_id: str, namespace: str) -> Iterator[None]:
    """Turn Temporal's NOT_FOUND for ``workflow_id`` into a `LookupError` naming it."""
    try:
        yield
    except Exception as error:
        from temporalio.service import RPCError, RPCStatusCode

        if isinstance(error, RPCError) and error.status == RPCStatusCode.NOT_FOUND:
            raise LookupError(
                f"no workflow {workflow_id!r} in Temporal namespace {namespace!r}"
            ) from None
        raise


def innermost_failure(error: BaseException) -> str:
    """The innermost message of a Temporal failure chain (what actually went wrong)."""
    from temporalio.exceptions import FailureError

    cause = getattr(error, "cause", None) or error
    while isinstance(cause, FailureError) and cause.cause is not None:
        cause = cause.cause
    return one_line(str(cause))


def _unreachable(error: ConnectionError) -> str:
    """``cannot reach Temporal at X (reason)``, without the transport's debug rendering."""
    text = one_line(str(error))
    where = re.match(r"(cannot reach Temporal at \S+): ", text)
    reasons = re.findall(r'(?:message|error): "([^"]+)"', text)
    if where and reasons:
        text = f"{where[1]} ({reasons[-1]})"
    return f"{text}; start one with `cairn dev` or set TEMPORAL_ADDRESS"


def search_attributes_fix(namespace: str) -> str:
    """The command that registers Cairn's search attributes in a Temporal namespace."""
    from workflows.search_attributes import SEARCH_ATTRIBUTES

    command = f"temporal operator search-attribute create --namespace {namespace}"
    for key in SEARCH_ATTRIBUTES:
        kind = key.indexed_value_type.name.title().replace("_", "")
        command += f" --name {key.name} --type {kind}"
    return command


def _refused(error: RPCError) -> str:
    message = one_line(error.message)
    if "search attribute" in message.lower() and "Cairn" in message:
        where = re.search(r"[Nn]amespace:? (\S+?)[ ,:]", message)
        namespace = where[1] if where else "default"
        return (
            f"the Temporal server lacks Cairn's search attributes ({message}); register them "
            f"with: {search_attributes_fix(namespace)}  (`cairn dev` does it for a local server)"
        )
    return f"Temporal refused the request ({error.status.name}): {message}"


def describe(error: BaseException) -> str:
    """One line saying what went wrong and, where it helps, how to fix it."""
    from pydantic import ValidationError
    from temporalio.client import (
        WorkflowFailureError,
        WorkflowQueryFailedError,
        WorkflowUpdateFailedError,
    )
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError

    from memory import MemoryStoreError, StoreUnavailable

    match error:
        case ConnectionError():
            return _unreachable(error)
        case StoreUnavailable():
            return f"{one_line(str(error))}; check CAIRN_MEMORY_URL (or --memory-url)"
        case ValidationError():
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "input"
            more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
            return f"invalid {error.title}: {where}: {first['msg']}{more}"
        case WorkflowAlreadyStartedError():
            return f"workflow {error.workflow_id!r} already exists; pass another --id"
        case WorkflowFailureError():
            return f"the workflow failed: {innermost_failure(error)}"
        case WorkflowUpdateFailedError():
            return f"the session did not accept the message: {innermost_failure(error)}"
        case WorkflowQueryFailedError():
            return f"the workflow could not answer: {one_line(str(error))}"
        case RPCError():
            return _refused(error)
        case (
            CommandError()
            | MemoryStoreError()
            | LookupError()
            | ValueError()
            | OSError()
            | ImportError()
        ):
            return one_line(str(error))
    return f"unexpected {type(error).__name__}: {one_line(str(error))} (--debug shows more)"


@contextlib.contextmanager
def reported(*, debug: bool) -> Iterator[None]:
    """Turn an exception into one line on stderr and exit code 1 (130 when interrupted)."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except (KeyboardInterrupt, asyncio.CancelledError):
        typer.echo("cairn: interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as error:
        if debug:
            raise
        typer.echo(f"cairn: {describe(error)}", err=True)
        raise typer.Exit(1) from None
