"""Process-level fault injection against real servers.

A package, so that its `agents` module never shadows the OpenAI Agents SDK's `agents`.
"""
