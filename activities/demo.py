"""Offline behaviours of the demo's agents under the ``scripted:demo-<agent>`` models.

Each is a deterministic function of what the agent was shown (its system text and messages),
so the demo and the tests need no network and give the same answers every run. Every reply
starts with ``[scripted]`` so nobody mistakes it for a real model's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from activities.llm import ChatMessage, ModelReply, ToolCall, ToolSpec, Usage
from activities.registry import AgentRegistry

_BLOCK = re.compile(
    r'<(output|recalled|pinned) source="[^"]*" key="([^"]*)"[^>]*>\n(.*?)\n</\1>', re.S
)
_NAME = re.compile(r"\bmy name is ([A-Z][\w-]*)", re.I)


def _blocks(system: str, kind: str) -> list[tuple[str, str]]:
    return [(key, body) for k, key, body in _BLOCK.findall(system) if k == kind]


def _first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".") + "."


def _last_user(messages: Sequence[ChatMessage]) -> str:
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


def planner(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    """Three angles on the question."""
    question = _last_user(messages).strip()
    return (
        f"[scripted] Plan for: {question}\n"
        "1. How failures are survived and recovered.\n"
        "2. How memory and context carry across steps.\n"
        "3. What it costs to operate."
    )


def researcher(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    """Findings: the first sentence of each recalled document on the focus, cited by key.

    The documents on the focus are those naming one of its words, in key order: decided by
    the text alone, never by search rank, so every run reports the same findings.
    """
    focus = _last_user(messages).rpartition("Focus:")[2].strip(" .") or "general"
    words = [w for w in re.findall(r"\w+", focus.lower()) if len(w) > 3]
    recalled = sorted(_blocks(system, "recalled"))
    on_focus = [(k, b) for k, b in recalled if any(w[:6] in b.lower() for w in words)]
    found = [f"- {_first_sentence(body)} [{key}]" for key, body in on_focus or recalled]
    return f"[scripted] Findings on {focus}:\n" + ("\n".join(found) or "- nothing recalled.")


def writer(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    """A report from the researchers' outputs; revised once the reviewer asked for it."""
    outputs = dict(_blocks(system, "output"))
    findings = list(
        dict.fromkeys(
            line
            for key, body in sorted(outputs.items())
            if key.startswith("output:research-")
            for line in body.splitlines()
            if line.startswith("- ")
        )
    )
    feedback = outputs.get("output:reviewer", "")
    title = "Revised report" if "VERDICT: revise" in feedback else "Draft report"
    cited = findings if title == "Revised report" else [f.rsplit(" [", 1)[0] for f in findings]
    return f"[scripted] {title} ({len(findings)} findings):\n" + "\n".join(cited)


def reviewer(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    """Asks for citations on the first draft, approves the revision."""
    report = dict(_blocks(system, "output")).get("output:writer", "")
    if "Revised report" in report:
        return "[scripted] Every claim cites its source.\nVERDICT: approve"
    return "[scripted] Cite a source document for each claim.\nVERDICT: revise"


def support(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> ModelReply:
    """Remembers the user's name with the ``remember`` tool and recalls it later."""
    usage = Usage(input_tokens=0, output_tokens=0)

    def reply(text: str, *calls: ToolCall) -> ModelReply:
        return ModelReply(
            text=text,
            tool_calls=calls,
            usage=usage,
            finish_reason="stop",
            model="scripted",
            offline=True,
        )

    last = messages[-1] if messages else None
    if last is not None and last.role == "tool":
        if last.name == "remember":
            return reply("[scripted] Thanks, I'll remember that for next time.")
        if match := _NAME.search(last.content):
            return reply(f"[scripted] Welcome back, {match.group(1)}!")
        return reply("[scripted] I don't know your name yet.")
    text = _last_user(messages)
    if match := _NAME.search(text):
        fact = f"My name is {match.group(1)}."
        call = ToolCall(id="remember-1", name="remember", arguments={"key": "name", "text": fact})
        return reply("", call)
    if "my name" in text.lower():
        call = ToolCall(id="recall-1", name="recall", arguments={"query": "name", "where": "user"})
        return reply("", call)
    return reply(f"[scripted] You said: {text[:200]}")


DEMO_SCRIPT_PREFIX = "demo-"


def demo_model(agent: str) -> str:
    """The model id that runs the demo's script for ``agent``: ``scripted:demo-<agent>``.

    Registered under their own names, the demo's scripts answer only the demo's agents, never
    a user's agent that happens to be called ``researcher`` or ``support``.
    """
    return f"scripted:{DEMO_SCRIPT_PREFIX}{agent}"


def register_demo(registry: AgentRegistry) -> AgentRegistry:
    """Register the demo agents' scripted behaviours on ``registry`` (as ``demo-<agent>``)."""
    for fn in (planner, researcher, writer, reviewer, support):
        registry.script(DEMO_SCRIPT_PREFIX + fn.__name__)(fn)
    return registry
