"""The one offline token estimate Cairn uses wherever no real tokenizer is at hand."""

from __future__ import annotations

import math


def approx_tokens(text: str) -> int:
    """Estimate how many tokens a BPE tokenizer makes of ``text``, without downloading one.

    It approximates OpenAI's ``cl100k_base`` (and similar tokenizers) on English prose and JSON,
    which average about four characters a token: ``ceil(len(text) / 4)``, so 0 for empty text.
    Context budgets, compaction and the usage of models that report none all count with it;
    rounding up makes the sum over the parts of a text at least the estimate of the whole.
    """
    return math.ceil(len(text) / 4)
