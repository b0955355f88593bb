"""The offline token estimate."""

from __future__ import annotations

import pytest

from memory.tokens import approx_tokens


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)])
def test_approx_tokens_is_a_quarter_of_the_characters_rounded_up(text: str, tokens: int) -> None:
    assert approx_tokens(text) == tokens


def test_the_parts_of_a_text_never_cost_less_than_the_whole() -> None:
    parts = ["a", "bc", "def", "\n\n", "ghijk"]
    assert sum(approx_tokens(p) for p in parts) >= approx_tokens("".join(parts))
