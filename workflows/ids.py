"""Workflow ids that name whose data a workflow carries, and how to read that back.

A session's workflow id is ``session:<tenant>:<session>``; a chain that acts for a user has
``chain:<tenant>:<user>:<name>-<suffix>`` (a chain without one keeps ``<name>-<suffix>``).
`cairn.subject_codec` reads a payload's subject from these ids alone, so each id must read back
one way. Namespace segments may hold ``:``, so inside the tenant and the user it is written
``%3A``: ``%`` is never in a segment, so the first plain ``:`` ends each part. The last part
(the session, or the chain's name and suffix) is taken whole. Pure functions, safe anywhere.
"""

from __future__ import annotations

from memory.namespace import Namespace, check_segment, encode

__all__ = [
    "chain_workflow_id",
    "check_chain_workflow_id",
    "session_workflow_id",
    "workflow_subject",
]

_SESSION = "session"
_CHAIN = "chain"
_COLON = "%3A"


def _part(value: str, what: str) -> str:
    return check_segment(value, what).replace(":", _COLON)


def _unpart(text: str, what: str) -> str:
    return check_segment(text.replace(_COLON, ":"), what)


def session_workflow_id(tenant: str, session: str) -> str:
    """The one workflow id of a session: starting it twice finds the running one.

    Raises:
        InvalidInput: ``tenant`` or ``session`` is not a namespace segment.
    """
    return f"{_SESSION}:{_part(tenant, 'tenant')}:{check_segment(session, 'session')}"


def chain_workflow_id(tenant: str, name: str, suffix: str, *, user: str | None = None) -> str:
    """A chain's workflow id, carrying its user when it acts for one.

    With a user, its payloads are sealed under the user's data key (`cairn.subject_codec`),
    so forgetting the user shreds them; without one the id stays ``<name>-<suffix>``.

    Raises:
        InvalidInput: ``tenant``, ``user`` or ``name`` is not a namespace segment.
    """
    run = f"{check_segment(name, 'name')}-{suffix}"
    if user is None:
        return run
    return f"{_CHAIN}:{_part(tenant, 'tenant')}:{_part(user, 'user')}:{run}"


def workflow_subject(workflow_id: str) -> Namespace | None:
    """Whose data a workflow's payloads are, from its id; None for any other workflow.

    ``(tenant, "session", session)`` for a session, ``(tenant, "user", user)`` for a chain
    acting for a user (its sub-teams' ids extend its own, so they share it).
    """
    kind, _, rest = workflow_id.partition(":")
    tenant, sep, rest = rest.partition(":")
    try:
        if kind == _SESSION and sep:
            return (_unpart(tenant, "tenant"), "session", check_segment(rest, "session"))
        user, sep, run = rest.partition(":")
        if kind == _CHAIN and sep and run:
            return (_unpart(tenant, "tenant"), "user", _unpart(user, "user"))
    except ValueError:
        pass
    return None


def check_chain_workflow_id(workflow_id: str, tenant: str, user: str | None) -> str:
    """``workflow_id`` if it reads back as a chain of ``user`` (or of nobody, without one).

    Raises:
        ValueError: The id names another subject, or none when the chain has a user: its
            payloads would not be sealed under the user's key, and forgetting the user would
            leave them readable.
    """
    expected = None if user is None else (tenant, "user", user)
    found = workflow_subject(workflow_id)
    if found == expected:
        return workflow_id
    if user is not None:
        raise ValueError(
            f"workflow id {workflow_id!r} does not carry user {user!r} of tenant {tenant!r}: "
            f"a chain acting for a user needs an id of the form "
            f"{chain_workflow_id(tenant, 'name', 'suffix', user=user)!r}, so that forgetting "
            "the user shreds what its history holds"
        )
    raise ValueError(
        f"workflow id {workflow_id!r} reads as a workflow of {encode(found or ())}, but the "
        "chain acts for no user: give it that user, or another id"
    )
