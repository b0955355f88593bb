"""Cairn's custom search attributes, for filtering workflows in the Temporal UI (deterministic).

Register them once per Temporal namespace; `cairn dev` and the test server do it at start-up,
production does it with ``temporal operator search-attribute create`` (see deploy/README.md).
"""

from temporalio.common import SearchAttributeKey

TENANT = SearchAttributeKey.for_keyword("CairnTenant")
SESSION = SearchAttributeKey.for_keyword("CairnSession")
TEAM = SearchAttributeKey.for_keyword("CairnTeam")
AGENT = SearchAttributeKey.for_keyword("CairnAgent")

SEARCH_ATTRIBUTES: list[SearchAttributeKey[str]] = [TENANT, SESSION, TEAM, AGENT]
