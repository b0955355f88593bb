"""The memory inspector behind ``cairn memory``: reads of the store, as tables and as JSON.

Each command returns a `View`: JSON-able data for ``--json`` and a rich renderable for people,
so a command prints one or the other and nothing else. Stored text is always shown as text,
never interpreted as rich markup. This module needs only the memory layer, so the inspector
starts quickly.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url

from memory import CommitRecord, Entry, MemoryRef, MemoryStore, SearchHit
from memory.embedding import EmbeddingConfig
from memory.engine import create_store_engine
from memory.namespace import parse
from workflows.ids import session_workflow_id

if TYPE_CHECKING:
    from activities.contracts import StepRecord

PAGE = 1000
"""The memory a local `cairn dev` or `cairn demo` writes (also `worker.Settings`' default)."""

View = tuple[Any, RenderableType]
"""What a command produces: data for ``--json`` and a renderable for people."""


def _prepare_sqlite(url: str, *, create: bool) -> None:
    try:
        parsed = make_url(url)
    except Exception:  # MemoryStore explains what a memory URL looks like
        return
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return
    path = Path(parsed.database)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise FileNotFoundError(
            f"no memory database at {path}: run `cairn demo` or `cairn memory migrate` "
            "first, or point CAIRN_MEMORY_URL (or --memory-url) at an existing one"
        )


async def open_store(
    url: str, *, create: bool, embedders: Sequence[EmbeddingConfig] | None = None
) -> MemoryStore:
    """Open the memory store at ``url``.

    With ``create``, a SQLite file (and its directory) is created and the schema migrated;
    without it, a missing SQLite file is a `FileNotFoundError` and an out-of-date schema an
    error naming ``cairn memory migrate``, so inspecting never creates anything.
    """
    _prepare_sqlite(url, create=create)
    return await MemoryStore.open(url, migrate=create, embedders=embedders)


def add_row(table: Table, *cells: str) -> None:
    """Add a row of plain text (stored values may contain what looks like rich markup)."""
    table.add_row(*(Text(cell) for cell in cells))


def ns_text(namespace: Sequence[str]) -> str:
    """The command-line form of a namespace: ``acme/session/s-42``."""
    return "/".join(namespace)


def preview(value: object, width: int = 60) -> str:
    """One line of a stored value: its ``text`` field when it has one, else compact JSON."""
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        value = value["text"]
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def ref_text(ref: MemoryRef) -> str:
    """``namespace key vN`` (``#N`` for a stream item)."""
    mark = f"#{ref.version}" if ref.kind == "stream" else f"v{ref.version}"
    return f"{ns_text(ref.namespace)} {ref.key} {mark}"


def step_record(commit: CommitRecord) -> StepRecord | None:
    """The `StepRecord` an agent step stored as its commit's result, if this is one."""
    # Imported here: the activities package loads the model SDKs, which only steps need.
    from activities.contracts import StepRecord

    if not isinstance(commit.result, dict):
        return None
    try:
        return StepRecord.model_validate(commit.result)
    except ValidationError:
        return None


async def list_entries(
    store: MemoryStore, prefix: Sequence[str], *, limit: int, tags: Sequence[str] | None = None
) -> list[Entry]:
    """Current entries at or under ``prefix``, at most ``limit``, following pages."""
    entries: list[Entry] = []
    cursor: str | None = None
    while len(entries) < limit:
        page = await store.list(
            prefix, limit=min(PAGE, limit - len(entries)), cursor=cursor, tags=tags
        )
        entries.extend(page.entries)
        cursor = page.next_cursor
        if cursor is None:
            break
    return entries


async def workflow_commits(store: MemoryStore, workflow_id: str) -> list[CommitRecord]:
    """Every commit a workflow made (all its runs), in order."""
    commits: list[CommitRecord] = []
    while True:
        after = commits[-1].seq if commits else 0
        page = await store.list_commits(workflow_id=workflow_id, after_seq=after, limit=PAGE)
        commits.extend(page)
        if len(page) < PAGE:
            return commits


def entry_json(entry: Entry) -> dict[str, Any]:
    """An entry for ``--json`` output, its namespace in command-line form."""
    data = entry.model_dump(mode="json")
    data["namespace"] = ns_text(entry.namespace)
    return data


def entries_table(entries: Iterable[Entry], title: str) -> Table:
    """Current entries: where, which version, who wrote it, and a preview."""
    table = Table(title=title, title_justify="left")
    for column in ("namespace", "key"):
        table.add_column(column, overflow="fold")
    table.add_column("ver", justify="right")
    table.add_column("commit", justify="right")
    table.add_column("agent")
    table.add_column("value")
    for e in entries:
        agent = e.provenance.agent if e.provenance else None
        add_row(
            table,
            ns_text(e.namespace),
            e.key,
            str(e.version),
            str(e.commit_seq),
            agent or "-",
            preview(e.value, 48),
        )
    return table


def history_table(entries: Iterable[Entry], title: str) -> Table:
    """Every version of one key, with its provenance."""
    table = Table(title=title, title_justify="left")
    table.add_column("ver", justify="right")
    table.add_column("commit", justify="right")
    table.add_column("written at")
    table.add_column("agent")
    table.add_column("workflow", overflow="fold")
    table.add_column("value")
    for e in entries:
        prov = e.provenance
        add_row(
            table,
            str(e.version),
            str(e.commit_seq),
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            (prov.agent if prov else None) or "-",
            (prov.workflow_id if prov else None) or "-",
            "(deleted)" if e.deleted else preview(e.value, 40),
        )
    return table


def hits_json(hits: Iterable[SearchHit]) -> list[dict[str, Any]]:
    """Search hits for ``--json`` output."""
    return [{**h.model_dump(mode="json"), "namespace": ns_text(h.namespace)} for h in hits]


def hits_table(hits: Iterable[SearchHit], title: str) -> Table:
    """Search hits, best first."""
    table = Table(title=title, title_justify="left")
    table.add_column("score", justify="right")
    table.add_column("namespace", overflow="fold")
    table.add_column("key")
    table.add_column("kind")
    table.add_column("ver/#", justify="right")
    table.add_column("value")
    for h in hits:
        add_row(
            table,
            f"{h.score:.2f}",
            ns_text(h.namespace),
            h.key,
            h.kind,
            f"#{h.version}" if h.kind == "stream" else str(h.version),
            preview(h.value, 50),
        )
    return table


def step_json(commit: CommitRecord) -> dict[str, Any]:
    """One commit of a workflow for ``cairn memory steps --json``."""
    record = step_record(commit)
    return {
        "commit_seq": commit.seq,
        "commit_key": commit.key,
        "created_at": commit.created_at.isoformat(),
        "agent": commit.provenance.agent,
        "run_id": commit.provenance.run_id,
        "activity_id": commit.provenance.activity_id,
        "attempt": commit.provenance.attempt,
        "step": record.step if record else None,
        "model": record.model if record else None,
        "offline": record.offline if record else None,
        "reads": [r.model_dump(mode="json") for r in record.input_refs] if record else [],
        "writes": [w.model_dump(mode="json") for w in commit.writes],
        "tokens": record.usage.model_dump() if record else None,
        "context_tokens": record.context_tokens if record else None,
        "latency_ms": record.latency_ms if record else None,
        "tool_calls": [c.model_dump() for c in record.tool_calls] if record else [],
        "verdict": record.verdict if record else None,
        "preview": record.preview if record else None,
        "forgotten": commit.forgotten,
    }


def steps_table(commits: Iterable[CommitRecord], title: str) -> Table:
    """Each step of a workflow: agent, model, what it read and wrote, tokens and latency."""
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("commit", justify="right")
    table.add_column("step")
    table.add_column("agent")
    table.add_column("model")
    table.add_column("read (versions)", overflow="fold")
    table.add_column("wrote", overflow="fold")
    table.add_column("tokens in/out", justify="right")
    table.add_column("ms", justify="right")
    for commit in commits:
        record = step_record(commit)
        writes = "\n".join(ref_text(w) for w in commit.writes) or "-"
        if record is None:
            add_row(
                table,
                str(commit.seq),
                "-",
                commit.provenance.agent or "-",
                "-",
                "-",
                writes,
                "-",
                "-",
            )
            continue
        model = f"{record.model} (offline)" if record.offline else record.model
        reads = "\n".join(ref_text(r) for r in record.input_refs) or "-"
        tokens = f"{record.usage.input_tokens}/{record.usage.output_tokens}"
        add_row(
            table,
            str(commit.seq),
            record.step,
            record.agent,
            model,
            reads,
            writes,
            tokens,
            str(record.latency_ms),
        )
    return table


# -- commands ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _opened(url: str) -> AsyncIterator[MemoryStore]:
    store = await open_store(url, create=False)
    try:
        yield store
    finally:
        await store.close()


def _tags(tags: str | None) -> list[str] | None:
    return [t.strip() for t in tags.split(",") if t.strip()] if tags else None


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 version``, ``2 versions``: a count with its noun agreeing."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


async def _tenant_counts(store: MemoryStore) -> dict[str, tuple[int, int]]:
    counts: dict[str, tuple[int, int]] = {}
    for namespace, entries in await store.namespaces(limit=100_000):
        spaces, total = counts.get(namespace[0], (0, 0))
        counts[namespace[0]] = (spaces + 1, total + entries)
    return counts


async def tenants(url: str) -> View:
    """``cairn memory ls`` without a prefix: the tenants that hold entries."""
    async with _opened(url) as store:
        counts = await _tenant_counts(store)
    table = Table(
        title=f"{plural(len(counts), 'tenant')} (list one with: cairn memory ls <tenant>)",
        title_justify="left",
    )
    table.add_column("tenant")
    table.add_column("namespaces", justify="right")
    table.add_column("entries", justify="right")
    for tenant, (spaces, total) in sorted(counts.items()):
        add_row(table, tenant, str(spaces), str(total))
    data = [{"tenant": t, "namespaces": n, "entries": e} for t, (n, e) in sorted(counts.items())]
    return data, table


async def ls(url: str, prefix: str, *, limit: int, tags: str | None) -> View:
    """``cairn memory ls``: current entries at or under a namespace prefix."""
    ns = parse(prefix)
    async with _opened(url) as store:
        entries = await list_entries(store, ns, limit=limit, tags=_tags(tags))
    title = f"{plural(len(entries), 'entry', 'entries')} under {ns_text(ns)}" + (
        " (limit reached; use --limit)" if len(entries) == limit else ""
    )
    return [entry_json(e) for e in entries], entries_table(entries, title)


async def get(url: str, namespace: str, key: str, *, as_of: int | None) -> View:
    """``cairn memory get``: one entry's current version, or the one visible at a commit."""
    ns = parse(namespace)
    async with _opened(url) as store:
        entry = await store.get(ns, key, as_of=as_of)
    prov = entry.provenance
    who = ", ".join(
        f"{label} {value}"
        for label, value in (
            ("agent", prov.agent if prov else None),
            ("workflow", prov.workflow_id if prov else None),
        )
        if value
    )
    head = Text(
        f"{ns_text(ns)} {key} v{entry.version} (commit {entry.commit_seq}"
        f"{', ' + who if who else ''}, {entry.created_at:%Y-%m-%d %H:%M:%S})",
        style="bold",
    )
    body = Text(json.dumps(entry.value, indent=2, ensure_ascii=False))
    return entry_json(entry), Group(head, body)


async def history(url: str, namespace: str, key: str) -> View:
    """``cairn memory history``: every version of a key with its provenance."""
    ns = parse(namespace)
    async with _opened(url) as store:
        versions = await store.history(ns, key)
    title = f"{ns_text(ns)} {key}: {plural(len(versions), 'version')}"
    return [entry_json(e) for e in versions], history_table(versions, title)


async def search(url: str, prefix: str, query: str, *, limit: int, tags: str | None) -> View:
    """``cairn memory search``: keyword search under a namespace prefix."""
    ns = parse(prefix)
    async with _opened(url) as store:
        hits = await store.search(ns, query, limit=limit, tags=_tags(tags))
    title = f"{plural(len(hits), 'hit')} for {query!r} under {ns_text(ns)}"
    return hits_json(hits), hits_table(hits, title)


async def steps(url: str, workflow_id: str) -> View:
    """``cairn memory steps``: what each step of a workflow read and wrote."""
    async with _opened(url) as store:
        commits = await workflow_commits(store, workflow_id)
        similar = [] if commits else await _session_ids(store, workflow_id)
    if not commits:
        hint = (
            f"; a session's workflow id is session:<tenant>:<session>: try {similar[0]}"
            if similar
            else " (is CAIRN_MEMORY_URL the one its workers use?)"
        )
        raise LookupError(f"no commits by workflow {workflow_id!r} in this memory store{hint}")
    title = f"{workflow_id}: {plural(len(commits), 'commit')}"
    return [step_json(c) for c in commits], steps_table(commits, title)


async def _session_ids(store: MemoryStore, name: str) -> list[str]:
    """The session workflow ids that ``name`` (a session's name) may have meant."""
    if ":" in name:
        return []
    found: list[str] = []
    for tenant in sorted(await _tenant_counts(store)):
        try:
            candidate = session_workflow_id(tenant, name)
        except ValueError:
            return []
        if await store.list_commits(workflow_id=candidate, limit=1):
            found.append(candidate)
    return found


async def fork(url: str, src: str, dst: str, *, as_of: int | None) -> View:
    """``cairn memory fork``: copy a namespace as of a commit into a new, empty one."""
    src_ns, dst_ns = parse(src), parse(dst)
    async with _opened(url) as store:
        commit = await store.fork(src_ns, dst_ns, as_of=as_of)
    when = f"as of commit {as_of}" if as_of is not None else "as it is now"
    view = (
        f"forked {ns_text(src_ns)} {when} into {ns_text(dst_ns)}: "
        f"{len(commit.writes)} entries and stream items in commit {commit.seq}"
    )
    data = commit.model_dump(mode="json")
    return data, view


async def forget(url: str, prefix: str) -> View:
    """``cairn memory forget``: delete everything under a prefix, history included."""
    ns = parse(prefix)
    async with _opened(url) as store:
        counts = await store.forget(ns, principal="cairn-cli")
    detail = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing"
    return {"prefix": ns_text(ns), **counts}, f"forgot {ns_text(ns)}: {detail}"


async def migrate(url: str) -> View:
    """``cairn memory migrate``: apply pending schema migrations (safe to run concurrently)."""
    _prepare_sqlite(url, create=True)
    # Not `MemoryStore.open`, which would migrate before `setup` could say from which version.
    store = MemoryStore(create_store_engine(url))
    try:
        before, after = await store.setup()
    finally:
        await store.close()
    shown = store.engine.url.render_as_string(hide_password=True)
    view = (
        f"memory schema at version {after} (migrated from {before}) in {shown}"
        if before != after
        else f"memory schema already at version {after} in {shown}"
    )
    return {"url": shown, "before": before, "schema_version": after}, view
