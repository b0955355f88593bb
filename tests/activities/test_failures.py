"""The one mapping from the activities' errors to Temporal failures."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from pydantic import BaseModel, ValidationError, field_validator
from sqlalchemy.exc import DBAPIError
from temporalio.exceptions import ApplicationError

from activities.failures import (
    boundary_failure,
    failure_message,
    temporal_failure,
    temporal_failures,
)
from activities.llm import ModelProtocolError, ModelRequestError, ModelUnavailable, UnknownModel
from activities.registry import UnknownAgent
from memory.errors import (
    AccessDenied,
    ConflictError,
    InvalidInput,
    NotFound,
    StoreUnavailable,
    ValueTooLarge,
)

SECRET = "canary-7d2e"


class Plan(BaseModel):
    steps: int


def validation_error() -> ValidationError:
    try:
        Plan.model_validate({"steps": SECRET})
    except ValidationError as error:
        return error
    raise AssertionError("the value was valid")


CALLER_MISTAKES = [
    InvalidInput("bad namespace segment"),
    ValueTooLarge(("acme", "run", "r"), "output:a", 2_000_000, 1_048_576),
    AccessDenied("writer", ("other", "session", "s"), "write"),
    NotFound("acme/session/s key plan"),
    UnknownAgent("no Python agent 'x' is registered on this worker"),
    ModelRequestError("openai", "gpt-test", status=400, code="invalid_request_error"),
    ModelProtocolError("openai", "gpt-test", reason="invalid choices"),
    UnknownModel("mistral:large", reason="unknown provider"),
]


@pytest.mark.parametrize("error", CALLER_MISTAKES, ids=lambda e: type(e).__name__)
def test_caller_mistakes_fail_at_once_typed_by_their_class(error: Exception) -> None:
    failure = temporal_failure(error)

    assert isinstance(failure, ApplicationError)
    assert (failure.type, failure.non_retryable) == (type(error).__name__, True)
    assert failure.message == str(error)


def test_validation_errors_fail_at_once_naming_the_field_not_the_value() -> None:
    failure = temporal_failure(validation_error())

    assert isinstance(failure, ApplicationError)
    assert (failure.type, failure.non_retryable) == ("ValidationError", True)
    assert "steps:" in failure.message and "Plan" in failure.message
    assert SECRET not in failure.message


def test_database_errors_fail_at_once_without_the_statement_parameters() -> None:
    error = DBAPIError("INSERT INTO entries VALUES (?)", (SECRET,), Exception("no such table"))
    failure = temporal_failure(error)

    assert isinstance(failure, ApplicationError)
    assert (failure.type, failure.non_retryable) == ("DatabaseError", True)
    assert "no such table" in failure.message and SECRET not in failure.message


def test_an_unavailable_model_is_retried_after_the_delay_it_asked_for() -> None:
    failure = temporal_failure(ModelUnavailable("openai", "gpt-test", status=429, retry_after=7))

    assert isinstance(failure, ApplicationError)
    assert (failure.type, failure.non_retryable) == ("ModelUnavailable", False)
    assert failure.next_retry_delay == timedelta(seconds=7)


def test_a_conflict_is_retried() -> None:
    failure = temporal_failure(ConflictError(("acme", "session", "s"), "summary", 1, 2))

    assert isinstance(failure, ApplicationError)
    assert (failure.type, failure.non_retryable) == ("ConflictError", False)


@pytest.mark.parametrize(
    "error",
    [StoreUnavailable("database unreachable"), RuntimeError("unexpected")],
    ids=lambda e: type(e).__name__,
)
def test_transient_and_unknown_errors_propagate_unchanged(error: Exception) -> None:
    assert temporal_failure(error) is error
    with pytest.raises(type(error)) as raised, temporal_failures():
        raise error
    assert raised.value is error


def test_the_mapped_failure_carries_no_cause() -> None:
    with pytest.raises(ApplicationError) as raised, temporal_failures():
        raise validation_error()

    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_importing_the_model_adapters_loads_no_provider_sdk() -> None:
    code = "import sys, activities.llm; print(sorted({'openai', 'anthropic'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"


class Named(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def _plain(cls, value: str) -> str:
        if not value.isalpha():
            raise ValueError(f"name {value!r} must be letters only")
        return value


def test_a_validators_message_names_the_rule_but_not_the_refused_value() -> None:
    with pytest.raises(ValidationError) as info:
        Named.model_validate({"name": SECRET})
    message = failure_message(info.value)
    assert (
        message
        == "1 validation error for Named: name: Value error, name <value> must be letters only"
    )


def test_an_undecodable_activity_input_fails_at_once_without_its_cause() -> None:
    with pytest.raises(ValidationError) as info:
        Plan.model_validate_json(f'{{"steps": "{SECRET}"}}')
    try:
        raise ApplicationError("Failed decoding arguments") from info.value
    except ApplicationError as sdk_error:
        failure = boundary_failure(sdk_error)
    assert isinstance(failure, ApplicationError)
    assert (failure.type, failure.non_retryable, failure.__cause__) == (
        "MalformedInput",
        True,
        None,
    )
    assert failure.message == "malformed activity input: 1 validation error for Plan: steps: " + (
        "Input should be a valid integer, unable to parse string as an integer"
    )
    # Anything else passes through unchanged.
    other = ApplicationError("Failed decoding arguments", non_retryable=True)
    assert boundary_failure(other) is other
