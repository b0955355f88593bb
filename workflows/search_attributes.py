"""Cairn's custom search attributes, for filtering workflows in the Temporal UI (deterministic).

Register them once per Temporal namespace; `cairn dev` and the test server do it at start-up,
production does it with ``temporal operator search-attribute create`` (see deploy/README.md).
Starters should set them when they start a workflow; a workflow started without them sets the
missing ones itself on its first task.
"""

from collections.abc import Sequence

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair

TENANT = SearchAttributeKey.for_keyword("CairnTenant")
SESSION = SearchAttributeKey.for_keyword("CairnSession")
TEAM = SearchAttributeKey.for_keyword("CairnTeam")
AGENT = SearchAttributeKey.for_keyword("CairnAgent")

SEARCH_ATTRIBUTES: list[SearchAttributeKey[str]] = [TENANT, SESSION, TEAM, AGENT]


def missing(pairs: Sequence[SearchAttributePair[str]]) -> list[SearchAttributePair[str]]:
    """Inside a workflow: those of ``pairs`` the workflow does not carry yet."""
    current = workflow.info().typed_search_attributes
    return [p for p in pairs if current.get(p.key) is None]


def upsert_missing(pairs: Sequence[SearchAttributePair[str]]) -> None:
    """Inside a workflow: set those of ``pairs`` the workflow does not carry yet."""
    if unset := missing(pairs):
        workflow.upsert_search_attributes([p.key.value_set(p.value) for p in unset])
