"""How the activities' errors become Temporal failures: retried later, or failed at once.

Caller mistakes (bad input, a denied access, a missing entry or agent) and database errors that
the memory layer did not classify as transient fail at once: retrying them changes nothing.
`StoreUnavailable` and `ConflictError` are retried. Failure messages never quote the data
that caused them: a validation error is described by field and problem, a database error by
its type, SQLSTATE and the driver's first line, never SQLAlchemy's rendering (which lists the
statement's parameters, that is, memory values).
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from temporalio.exceptions import ApplicationError


def failure_message(error: BaseException) -> str:
    """An error's message for its Temporal failure.

    A pydantic validation error is described by field and problem only: its own message quotes
    the offending input, which may be a memory value or a secret.
    """
    if not isinstance(error, ValidationError):
        return str(error)
    problems = [
        f"{'.'.join(str(part) for part in e['loc']) or 'input'}: {e['msg']}"
        for e in error.errors(include_url=False, include_context=False, include_input=False)
    ]
    count = error.error_count()
    shown = "; ".join(problems[:10]) + ("; ..." if count > 10 else "")
    return f"{count} validation error{'s' if count != 1 else ''} for {error.title}: {shown}"


def non_retryable(error: BaseException) -> ApplicationError:
    """A failure Temporal must not retry, typed by the error's class name."""
    return ApplicationError(failure_message(error), type=type(error).__name__, non_retryable=True)


def database_failure(error: DBAPIError) -> ApplicationError:
    """A database error that is not transient (the memory layer raised it as it was).

    The schema is missing or behind, the role may not write, a value broke a constraint:
    retrying the same step cannot help, so it fails at once, naming what the database said.
    """
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
