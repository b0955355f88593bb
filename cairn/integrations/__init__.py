"""Framework integrations, each an optional extra: importing Cairn never requires their SDKs.

Public subpackages: `cairn.integrations.langgraph` (``pip install cairn-agents[langgraph]``):
a LangGraph ``BaseStore`` and checkpointer on Cairn memory.
Public modules: `cairn.integrations.openai_agents` (``pip install cairn-agents[openai-agents]``):
`CairnSession`, a workflow-safe OpenAI Agents ``Session``; `cairn.integrations.pydantic_ai`
(``pip install cairn-agents[pydantic-ai]``): PydanticAI message history by reference.
Nothing here is imported by ``cairn`` itself; import the subpackage you use.
"""
