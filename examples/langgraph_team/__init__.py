"""A LangGraph team under Temporal's LangGraph plugin, sharing Cairn memory through `CairnStore`.

Run it offline from the repository root: ``python -m examples.langgraph_team.run``.
"""
