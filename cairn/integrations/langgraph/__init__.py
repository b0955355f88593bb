"""LangGraph on Cairn memory: a ``BaseStore`` and a checkpointer (``cairn-agents[langgraph]``).

Public submodules: `store` (`CairnStore`), `saver` (`CairnSaver`), `labels` (how LangGraph
namespaces map to Cairn's) and `conformance` (a pytest suite for any ``BaseStore``).
"""

from cairn.integrations.langgraph.labels import LabelError, decode_label, encode_label
from cairn.integrations.langgraph.saver import CairnSaver
from cairn.integrations.langgraph.store import CairnItem, CairnSearchItem, CairnStore

__all__ = [
    "CairnItem",
    "CairnSaver",
    "CairnSearchItem",
    "CairnStore",
    "LabelError",
    "decode_label",
    "encode_label",
]
