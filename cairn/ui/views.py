"""What the pages show, computed from store records: the namespace tree, diffs and highlights.

Pure functions over `memory` records; the HTML is in the templates, which escape everything
(stored text is never markup). `value_text` is how every page shows a stored value.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from memory import Entry

DIFF_WRAP = 72


@dataclass
class TreeNode:
    """One namespace of the tree: its own entries and the total under it."""

    name: str
    path: str
    own: int = 0
    total: int = 0
    children: dict[str, TreeNode] = field(default_factory=dict)

    @property
    def sorted_children(self) -> list[TreeNode]:
        """Children in name order."""
        return [self.children[k] for k in sorted(self.children)]


def namespace_tree(counts: Iterable[tuple[Sequence[str], int]], depth: int = 3) -> TreeNode:
    """Fold ``(namespace, entries)`` pairs into a tree ``depth`` levels deep (deeper rolls up).

    The root's children are tenants; each node's ``total`` counts every entry under it.
    """
    root = TreeNode(name="", path="")
    for namespace, count in counts:
        node = root
        node.total += count
        for i, segment in enumerate(namespace[:depth]):
            path = "/".join(namespace[: i + 1])
            node = node.children.setdefault(segment, TreeNode(name=segment, path=path))
            node.total += count
        if len(namespace) <= depth:
            node.own += count
    return root


def value_text(value: object) -> str:
    """A stored value as text: its ``text`` field when it has one, else indented JSON."""
    if isinstance(value, dict) and isinstance(value.get("text"), str) and len(value) == 1:
        return str(value["text"])
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def diff_lines(entry: Entry) -> list[str]:
    """A version as lines to diff: a ``text`` field line by line, then the other fields."""
    value = entry.value
    if entry.deleted:
        return ["(deleted)"]
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        rest = {k: v for k, v in value.items() if k != "text"}
        extra = json.dumps(rest, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
        return [*str(value["text"]).splitlines(), "", *(extra if rest else [])]
    return value_text(value).splitlines()


def diff_table(old: Entry, new: Entry) -> Markup:
    """Side-by-side diff of two versions (difflib's HTML table; it escapes the text)."""
    a, b = diff_lines(old), diff_lines(new)
    table = difflib.HtmlDiff(wrapcolumn=DIFF_WRAP).make_table(
        a, b, fromdesc=f"v{old.version}", todesc=f"v{new.version}"
    )
    # difflib escapes &, < and > in the lines; its ids and classes are its own.
    return Markup(table)


def highlight(text: str, query: str) -> Markup:
    """``text`` escaped, with every query word marked."""
    words = sorted({w for w in re.findall(r"\w+", query) if len(w) > 1}, key=len, reverse=True)
    if not words:
        return escape(text)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    out: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        out.append(str(escape(text[last : match.start()])))
        out.append(f"<mark>{escape(match.group())}</mark>")
        last = match.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


def snippet(text: str, query: str, width: int = 240) -> str:
    """The part of ``text`` around the first query word, about ``width`` characters."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    words = [w for w in re.findall(r"\w+", query) if len(w) > 1]
    found = [i for i in (text.lower().find(w.lower()) for w in words) if i >= 0]
    start = max(0, min(found) - width // 3) if found else 0
    piece = text[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")
