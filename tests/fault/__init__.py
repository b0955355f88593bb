"""Process-level fault injection against real servers (a package, so its `agents` module never shadows the OpenAI Agents SDK)."""
