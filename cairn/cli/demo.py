"""``cairn demo``: a research team, then a support agent that remembers a user across sessions.

It starts (or reuses) a Temporal dev server and runs a worker in this process on a task queue
of its own, so whatever else polls the server, the demo's steps run here and write the store
whose contents it shows. Every name it creates carries a fresh run id, so runs never mix.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from temporalio.client import Client

from activities.contracts import run_namespace
from cairn.cli.memory import add_row, ns_text, preview, step_record, workflow_commits
from cairn.cli.runs import end_session, follow_chain, send, start_chain, ui_link
from cairn.cli.server import start_worker
from cairn.devserver import dev_server, ensure_search_attributes
from cairn.runtime import Settings, connect
from memory import CommitRecord, MemoryRef, MemoryStore, NotFound
from memory.namespace import parse
from workflows.contracts import ChainProgress, ChainSpec, Node, SessionInput, Turn, Write
from workflows.links import DEFAULT_UI_URL, inspector_url
from workflows.session import session_workflow_id
from workflows.teams import research_team, support_agent

TENANT = "acme"
QUESTION = "How do agent teams keep their context durable?"
CONVERSATION = (
    ("Hi, my name is Ada", "My invoices page is empty."),
    ("Do you know my name?",),
)
INGEST = "(ingest)"


def model_notice(model: str) -> str:
    """The line that says which model answers (rich markup)."""
    if model == "scripted":
        return (
            "[bold]Model:[/] the offline scripted model: deterministic canned replies, no "
            "network, no API key\n       (set OPENAI_API_KEY or ANTHROPIC_API_KEY for a real one)"
        )
    return f"[bold]Model:[/] {escape(model)}: a real model, billed by its provider"


class _StepPrinter:
    """Prints each step of a workflow once, as its commit appears in memory."""

    def __init__(self, store: MemoryStore, workflow_id: str, console: Console) -> None:
        self.store = store
        self.workflow_id = workflow_id
        self.console = console
        self.seen: set[int] = set()

    async def __call__(self) -> None:
        for commit in await workflow_commits(self.store, self.workflow_id):
            if commit.seq in self.seen:
                continue
            self.seen.add(commit.seq)
            record = step_record(commit)
            line = Text("  ✓ ", style="green")
            if record is None:
                spaces = ", ".join(sorted({ns_text(w.namespace) for w in commit.writes}))
                line.append(f"{INGEST:<12} {commit.provenance.agent or '-':<11} ")
                line.append(f"wrote {len(commit.writes)} documents to {spaces}")
            else:
                line.append(f"{record.step:<12} {record.agent:<11} ")
                if record.verdict:
                    line.append(f"{record.verdict}: ", style="bold")
                line.append(preview(record.preview, 72))
            self.console.print(line)


def _memory_rows(commits: Sequence[CommitRecord]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for commit in commits:
        record = step_record(commit)
        workflow_id = commit.provenance.workflow_id or ""
        # A commit that is no agent step: the chain's document ingest, or a session's own record.
        step = (
            record.step
            if record
            else ("(session)" if workflow_id.startswith("session:") else INGEST)
        )
        agent = commit.provenance.agent or "-"
        streams: dict[tuple[tuple[str, ...], str], list[MemoryRef]] = {}
        for ref in commit.writes:
            if ref.kind == "stream":
                streams.setdefault((ref.namespace, ref.key), []).append(ref)
                continue
            version = f"v{ref.version}"
            rows.append((ns_text(ref.namespace), ref.key, version, agent, step, str(commit.seq)))
        for (namespace, stream), refs in streams.items():
            seqs = sorted(r.version for r in refs)
            span = f"#{seqs[0]}" if len(seqs) == 1 else f"#{seqs[0]}-{seqs[-1]}"
            key = f"{stream} (stream)"
            rows.append((ns_text(namespace), key, span, agent, step, str(commit.seq)))
    return rows


def memory_table(commits: Sequence[CommitRecord]) -> Table:
    """The memory a run produced: every write with its version, agent, step and commit."""
    table = Table(title="Memory written by this run", title_justify="left")
    table.add_column("namespace", overflow="fold")
    table.add_column("key", overflow="fold")
    table.add_column("version", justify="right")
    table.add_column("agent")
    table.add_column("step", overflow="fold")
    table.add_column("commit", justify="right")
    for row in _memory_rows(commits):
        add_row(table, *row)
    return table


async def _without_unchanged_writes(store: MemoryStore, spec: ChainSpec) -> tuple[ChainSpec, int]:
    """``spec`` without the puts whose value is already current, and how many it dropped.

    A second demo run finds its documents as the first one left them; writing them again
    would only add identical versions. (The store itself records every put: that is its job.)
    """
    nodes: list[Node] = []
    dropped = 0
    for node in spec.nodes:
        if isinstance(node, Write):
            changed = []
            for write in node.writes:
                try:
                    current = await store.get(parse(write.namespace), write.key)
                except NotFound:
                    changed.append(write)
                    continue
                if current.value != write.value or tuple(current.tags) != write.tags:
                    changed.append(write)
            dropped += len(node.writes) - len(changed)
            if not changed:
                continue
            node = node.model_copy(update={"writes": tuple(changed)})
        nodes.append(node)
    return spec.model_copy(update={"nodes": tuple(nodes)}), dropped


async def _research(
    client: Client, store: MemoryStore, task_queue: str, run: str, model: str, console: Console
) -> tuple[str, str]:
    workflow_id = f"research-{run}"
    spec = research_team(TENANT, QUESTION, model=model)
    console.rule("[bold]1. A research team")
    console.print(
        f"Planner, three researchers in parallel, then a writer/reviewer loop, on {QUESTION!r}\n"
        f"workflow [cyan]{workflow_id}[/]\n"
    )
    spec, unchanged = await _without_unchanged_writes(store, spec)
    if unchanged:
        line = Text("  ✓ ", style="green")
        line.append(f"{INGEST:<12} {spec.name:<11} {unchanged} documents already there, unchanged")
        console.print(line)
    handle = await start_chain(client, spec, workflow_id=workflow_id, task_queue=task_queue)
    printer = _StepPrinter(store, workflow_id, console)
    with console.status("starting") as status:

        async def on_progress(progress: ChainProgress) -> None:
            await printer()
            running = ", ".join(progress.current) or "-"
            status.update(escape(f"{progress.done} steps done; running: {running}"))

        result = await follow_chain(handle, on_progress)
    await printer()
    entry = await store.get(run_namespace(TENANT, workflow_id), "output:writer")
    value = entry.value
    answer = str(value.get("text", "")) if isinstance(value, dict) else str(value)
    console.print(
        f"\nThe team {result.status} in {len(result.steps)} steps; the reviewer approved "
        f"version {entry.version} of the writer's report:"
    )
    console.print(Panel(Text(answer), title="Final answer", title_align="left"))
    return workflow_id, answer


async def _support(
    client: Client, store: MemoryStore, task_queue: str, run: str, model: str, console: Console
) -> tuple[tuple[str, ...], str]:
    user = f"ada-{run}"
    console.rule("[bold]2. A support agent that remembers you across sessions")
    console.print(f"Two sessions of user [cyan]{user}[/], each one long-lived workflow.")
    ids: list[str] = []
    last_reply = ""
    for number, messages in enumerate(CONVERSATION, start=1):
        session = f"support-{run}-{number}"
        agent = support_agent(model=model)
        inp = SessionInput(tenant=TENANT, session=session, user=user, agent=agent)
        ids.append(session_workflow_id(TENANT, session))
        console.print(f"\n[bold]Session {number}[/] (workflow [cyan]{escape(ids[-1])}[/])")
        for i, text in enumerate(messages, start=1):
            console.print(Text.assemble("  ", ("you  ", "bold"), " > ", text))
            turn = Turn(message_id=f"m{i}", text=text)
            reply = await send(client, inp, turn, task_queue=task_queue)
            last_reply = reply.text
            console.print(Text.assemble("  ", ("agent", "bold"), " > ", reply.text))
        await end_session(client, TENANT, session, wait=timedelta(seconds=30))
    if "Ada" in last_reply:
        fact = await store.get((TENANT, "user", user), "name")
        console.print(
            f"\n[green]✓[/] Recalled across sessions: session 1 stored "
            f"{TENANT}/user/{user} key 'name' v{fact.version} (commit {fact.commit_seq}); "
            "session 2 found it."
        )
    else:
        console.print("\n[yellow]![/] The model did not recall the name this time.")
    return tuple(ids), last_reply


async def run_demo(
    settings: Settings,
    *,
    model: str,
    ui_port: int,
    state_dir: Path,
    console: Console,
) -> None:
    """Start or reuse the dev server and a worker, run both demos, and show what they wrote."""
    run = uuid.uuid4().hex[:6]
    namespace = str(settings.temporal.get("namespace", "default"))
    console.print(model_notice(model))
    async with dev_server(
        settings.temporal_address, namespace=namespace, state_dir=state_dir, ui_port=ui_port
    ) as server:
        if server.started:
            console.print(
                f"[bold]Temporal:[/] started a dev server at {server.address} "
                f"(state in {server.state}; it stops when the demo ends)"
            )
        else:
            console.print(f"[bold]Temporal:[/] using the server running at {server.address}")
        client = await connect(settings)
        await ensure_search_attributes(client, namespace)
        # The demo's own queue, and none of the user's extensions: it runs only its own team.
        demo_settings = settings.model_copy(
            update={"task_queue": f"cairn-demo-{run}", "extensions": ()}
        )
        async with start_worker(client, demo_settings) as local:
            url = local.store.engine.url.render_as_string(hide_password=True)
            console.print(
                f"[bold]Memory:[/] {escape(url)}\n"
                f"[bold]Worker:[/] in this process, task queue {local.task_queue}\n"
            )
            research_id, _ = await _research(
                client, local.store, local.task_queue, run, model, console
            )
            session_ids, _ = await _support(
                client, local.store, local.task_queue, run, model, console
            )
            commits: list[CommitRecord] = []
            for workflow_id in (research_id, *session_ids):
                commits.extend(await workflow_commits(local.store, workflow_id))
        console.print()
        console.print(memory_table(commits))
        console.print(
            f"Look closer: cairn memory steps {research_id}\n"
            f"            cairn memory history {ns_text(run_namespace(TENANT, research_id))} "
            "output:writer\n",
            highlight=False,
        )
        console.rule("[bold]Temporal UI")
        workflows = [("research team", research_id)]
        workflows += [(f"session {i}", wid) for i, wid in enumerate(session_ids, start=1)]
        if server.ui_url is None:
            console.print(f"No UI answers next to {server.address}; open your server's UI.")
        else:
            for label, workflow_id in workflows:
                link = ui_link(server.ui_url, namespace, workflow_id)
                console.print(f"  {label:<14} {link}", highlight=False, soft_wrap=True)
        console.rule("[bold]Cairn UI[/] (what each step read and wrote)")
        for label, workflow_id in workflows:
            link = inspector_url(DEFAULT_UI_URL, workflow_id)
            console.print(f"  {label:<14} {link}", highlight=False, soft_wrap=True)
        console.print("Serve it with [bold]cairn dev[/] (or [bold]cairn ui[/]).")
        if server.started:
            console.print(
                "\nThe dev server stops with the demo; its history stays in "
                f"{server.state}. Run [bold]cairn dev[/] to browse these runs in the UI."
            )
