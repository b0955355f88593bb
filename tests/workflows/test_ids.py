"""Workflow ids read back as the subject they were made for, whatever ``:`` the names hold."""

from __future__ import annotations

import pytest

from memory import InvalidInput
from workflows.contracts import ChainSpec, Step
from workflows.ids import (
    chain_workflow_id,
    check_chain_workflow_id,
    session_workflow_id,
    workflow_subject,
)
from workflows.teams import support_agent


def test_ids_keep_their_shape_for_plain_names() -> None:
    assert session_workflow_id("acme", "s-42") == "session:acme:s-42"
    assert chain_workflow_id("acme", "report", "1a2b") == "report-1a2b"
    assert chain_workflow_id("acme", "report", "1a2b", user="u-7") == "chain:acme:u-7:report-1a2b"


@pytest.mark.parametrize(
    ("tenant", "session"),
    [("acme", "s-1"), ("org:acme", "s-1"), ("org", "acme:s-1"), ("a:b:", ":c")],
)
def test_a_session_id_reads_back_as_its_session(tenant: str, session: str) -> None:
    assert workflow_subject(session_workflow_id(tenant, session)) == (tenant, "session", session)


def test_a_colon_in_the_tenant_never_makes_two_tenants_share_an_id() -> None:
    # Before escaping, both were "session:org:acme:s-1", and tenant org could reach it.
    assert session_workflow_id("org:acme", "s-1") != session_workflow_id("org", "acme:s-1")
    assert chain_workflow_id("org:a", "n", "1", user="u") != chain_workflow_id(
        "org", "n", "1", user="a:u"
    )


@pytest.mark.parametrize(("tenant", "user"), [("acme", "u-7"), ("org:acme", "u:7"), ("t", "::")])
def test_a_users_chain_and_its_sub_teams_read_back_as_the_user(tenant: str, user: str) -> None:
    workflow_id = chain_workflow_id(tenant, "team:x", "ab12", user=user)
    assert workflow_subject(workflow_id) == (tenant, "user", user)
    assert workflow_subject(f"{workflow_id}.checkers.1") == (tenant, "user", user)


@pytest.mark.parametrize(
    "workflow_id",
    ["report-1a2b", "chain-completed", "session:", "session:acme", "chain:acme:u-7", "chain:a:"],
)
def test_other_ids_have_no_subject(workflow_id: str) -> None:
    assert workflow_subject(workflow_id) is None


def test_names_that_are_not_segments_are_refused_when_the_id_is_made() -> None:
    with pytest.raises(InvalidInput, match="invalid tenant"):
        session_workflow_id("a/b", "s-1")
    with pytest.raises(InvalidInput, match="invalid user"):
        chain_workflow_id("acme", "report", "1", user="u 7")


def test_a_chain_id_must_carry_its_user_and_only_then_a_subject() -> None:
    assert check_chain_workflow_id("chain:acme:u-7:r-1", "acme", "u-7") == "chain:acme:u-7:r-1"
    with pytest.raises(ValueError, match="does not carry user 'u-7'"):
        check_chain_workflow_id("r-1", "acme", "u-7")
    with pytest.raises(ValueError, match="does not carry user 'u-7'"):
        check_chain_workflow_id("chain:acme:u-8:r-1", "acme", "u-7")
    with pytest.raises(ValueError, match="acme/session/s-1, but the chain acts for no user"):
        check_chain_workflow_id("session:acme:s-1", "acme", None)


def test_a_chains_user_is_a_namespace_segment() -> None:
    with pytest.raises(ValueError, match="invalid user"):
        ChainSpec(
            name="t",
            tenant="acme",
            user="u/7",
            agents=(support_agent(model="scripted"),),
            nodes=(Step(agent="support"),),
        )
