"""The memory as MCP tools: recall, get, history, remember, list_namespaces, transcript, steps.

Every tool goes through one `memory.policy.ScopedStore`, so it reaches only what the server's
grants allow, in its one tenant; a namespace outside them is refused with the same error
whether or not it holds anything. Arguments are validated by their schema (namespaces by
`memory.namespace`) and every caller mistake comes back as a tool error naming what was wrong.
"""

from __future__ import annotations

import contextlib
import inspect
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from activities.contracts import run_namespace
from cairn.cli.memory import step_json, workflow_commits
from cairn.mcp import views
from cairn.mcp.access import readable_namespaces
from memory import (
    CommitRecord,
    MemoryRef,
    MemoryStore,
    MemoryStoreError,
    Provenance,
    ScopedStore,
)
from memory.context import quote, search_readable
from memory.namespace import MAX_KEY, MAX_SEGMENT, MAX_TAGS, Namespace, parse

# Whether the store's search takes ``mode=`` (keyword, vector, hybrid): read from its
# signature, so `recall` passes the mode through as soon as the store accepts one.
SEARCH_HAS_MODE = "mode" in inspect.signature(MemoryStore.search).parameters
MAX_IDEMPOTENCY_KEY = 200


def _namespace(text: str) -> str:
    return "/".join(parse(text))


NamespacePath = Annotated[
    str,
    Field(
        description="A namespace, tenant first, segments joined by '/': e.g. 'acme/user/u-7'. "
        f"Segments are 1-{MAX_SEGMENT} letters, digits or ._:-",
        min_length=1,
        max_length=600,
        examples=["acme/user/u-7"],
    ),
    AfterValidator(_namespace),
]
Key = Annotated[
    str,
    Field(description="The entry's key, e.g. 'favorite-color'.", min_length=1, max_length=MAX_KEY),
]
Tags = Annotated[
    tuple[str, ...],
    Field(
        description="Labels; a search returns only entries carrying all of them.",
        max_length=MAX_TAGS,
    ),
]
Mode = Literal["keyword", "vector", "hybrid"]


class Remembered(BaseModel):
    """What `remember` wrote (or, for a retried call, what its first call wrote)."""

    model_config = ConfigDict(frozen=True)
    namespace: str
    key: str
    version: int
    commit_seq: int
    idempotency_key: str
    replayed: bool


class NamespaceCount(BaseModel):
    """A namespace and how many current entries it holds."""

    model_config = ConfigDict(frozen=True)
    namespace: str
    entries: int


class Namespaces(BaseModel):
    """Readable namespaces holding entries, in order."""

    model_config = ConfigDict(frozen=True)
    namespaces: tuple[NamespaceCount, ...]
    truncated: bool = Field(description="More readable namespaces remained than ``limit``.")


class Steps(BaseModel):
    """A workflow's commits: what each step read and wrote (as ``cairn memory steps --json``)."""

    model_config = ConfigDict(frozen=True)
    workflow_id: str
    steps: tuple[dict[str, JsonValue], ...]


@contextlib.contextmanager
def answering() -> Iterator[None]:
    """Turn the memory layer's errors into tool errors carrying their message."""
    try:
        yield
    except MemoryStoreError as error:
        raise ToolError(str(error)) from error


def client_name(ctx: Context[Any, Any]) -> str:
    """The client's name and version from its initialize request (``unknown client``)."""
    params = ctx.session.client_params
    if params is None:
        return "unknown client"
    info = params.client_info
    # The client names itself: anything unprintable would make every write's provenance invalid.
    shown = "".join(ch for ch in f"{info.name} {info.version}" if ch.isprintable())
    return shown.strip()[:80] or "unknown client"


class MemoryTools:
    """The tools of one server, bound to its scoped memory."""

    def __init__(self, memory: ScopedStore) -> None:
        self.memory = memory

    def register(self, server: MCPServer[Any]) -> None:
        """Add every tool to ``server``."""
        reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)
        readers = (self.recall, self.get, self.history, self.list_namespaces, self.transcript)
        for tool in (*readers, self.steps):
            server.add_tool(tool, annotations=reads)
        # A retried call with the same idempotency key writes nothing more.
        writes = ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        )
        server.add_tool(self.remember, annotations=writes)

    def _prefix(self, prefix: str | None) -> Namespace:
        return parse(prefix) if prefix else (self.memory.tenant,)

    async def recall(
        self,
        query: Annotated[
            str, Field(description="Words to look for.", min_length=1, max_length=1000)
        ],
        prefix: Annotated[
            NamespacePath | None,
            Field(description="Search at or under this namespace; the whole tenant if omitted."),
        ] = None,
        limit: Annotated[int, Field(description="At most this many hits.", ge=1, le=50)] = 10,
        tags: Tags = (),
        mode: Annotated[
            Mode | None,
            Field(description="Search mode, where the store offers more than keyword search."),
        ] = None,
    ) -> Annotated[CallToolResult, views.Hits]:
        """Search memory: current entries and stream items matching the query, best first."""
        ns = self._prefix(prefix)
        with answering():
            if mode is None:
                found = await search_readable(self.memory, ns, query, limit=limit, tags=tags)
            elif SEARCH_HAS_MODE:
                found = await self.memory.search(ns, query, limit=limit, tags=tags, mode=mode)
            else:
                raise ToolError("this memory store offers keyword search only: omit mode")
        blocks = [views.quoted_hit(h) for h in found]
        data = views.Hits(hits=tuple(views.hit(h) for h in found))
        return views.result(data, blocks, f"no memory matches {query!r}")

    async def get(
        self,
        namespace: NamespacePath,
        key: Key,
        as_of: Annotated[
            int | None,
            Field(description="Read as of this commit sequence number (time travel).", ge=0),
        ] = None,
    ) -> Annotated[CallToolResult, views.Fact]:
        """Read one entry: its current version, or the version visible at commit ``as_of``."""
        with answering():
            entry = await self.memory.get(parse(namespace), key, as_of=as_of)
        return views.result(views.fact(entry), [views.quoted_entry(entry)], "")

    async def history(
        self,
        namespace: NamespacePath,
        key: Key,
        limit: Annotated[int, Field(description="At most this many versions.", ge=1, le=100)] = 20,
    ) -> Annotated[CallToolResult, views.Facts]:
        """Every version of one entry, oldest first, with who wrote each (deletions included)."""
        with answering():
            versions = await self.memory.history(parse(namespace), key, limit=limit)
        data = views.Facts(facts=tuple(views.fact(e) for e in versions))
        return views.result(data, [views.quoted_entry(e) for e in versions], "")

    async def remember(
        self,
        namespace: NamespacePath,
        key: Key,
        value: Annotated[JsonValue, Field(description="The fact: any JSON value.")],
        ctx: Context[Any, Any],
        idempotency_key: Annotated[
            str | None,
            Field(
                description="Makes retries safe: a call repeating an earlier call's key writes "
                "nothing and returns the earlier result. Generated when omitted (and returned).",
                min_length=1,
                max_length=MAX_IDEMPOTENCY_KEY,
            ),
        ] = None,
        tags: Tags = (),
        expected_version: Annotated[
            int | None,
            Field(
                description="Write only if the current version is this (0: must not exist).", ge=0
            ),
        ] = None,
    ) -> Remembered:
        """Write a fact under (namespace, key) as a new version; earlier versions are kept."""
        ns = parse(namespace)
        given = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        # The tenant is part of the commit key, so two tenants' clients can never collide.
        commit_key = f"mcp:{self.memory.tenant}:{given}"
        agent = f"{self.memory.principal} via {client_name(ctx)}"
        with answering():
            async with self.memory.commit(key=commit_key, provenance=Provenance(agent=agent)) as c:
                c.put(ns, key, value, tags=tags, expected_version=expected_version)
        ref: MemoryRef = c.writes[0]
        return Remembered(
            namespace="/".join(ref.namespace),
            key=ref.key,
            version=ref.version,
            commit_seq=ref.commit_seq,
            idempotency_key=given,
            replayed=c.replayed,
        )

    async def list_namespaces(
        self,
        prefix: Annotated[
            NamespacePath | None,
            Field(description="Only namespaces at or under this one; the whole tenant if omitted."),
        ] = None,
        limit: Annotated[
            int, Field(description="At most this many namespaces.", ge=1, le=500)
        ] = 100,
    ) -> Namespaces:
        """The readable namespaces holding entries, with how many each holds.

        A namespace holding only streams (a transcript, an event log) and no entries is not
        listed; read its stream with ``transcript``.
        """
        with answering():
            counts = await readable_namespaces(self.memory, self._prefix(prefix), limit=limit + 1)
        shown = [NamespaceCount(namespace="/".join(n), entries=k) for n, k in counts]
        return Namespaces(namespaces=tuple(shown[:limit]), truncated=len(shown) > limit)

    async def transcript(
        self,
        namespace: NamespacePath,
        stream: Annotated[
            str, Field(description="The stream's name.", min_length=1, max_length=MAX_SEGMENT)
        ] = "transcript",
        last: Annotated[int, Field(description="How many of the newest items.", ge=1, le=200)] = 20,
    ) -> Annotated[CallToolResult, views.Turns]:
        """The last items of a session's stream (its transcript by default), oldest first."""
        with answering():
            items = await self.memory.tail(parse(namespace), stream, last)
        data = views.Turns(turns=tuple(views.turn(i) for i in items))
        return views.result(data, [views.quoted_item(i) for i in items], "the stream is empty")

    async def steps(
        self,
        workflow_id: Annotated[
            str, Field(description="The Temporal workflow id.", min_length=1, max_length=1000)
        ],
    ) -> Annotated[CallToolResult, Steps]:
        """What each step of a workflow read and wrote: agent, model, versions, tokens."""
        run = run_namespace(self.memory.tenant, workflow_id)
        with answering():
            self.memory.check("read", run)
            commits = await workflow_commits(self.memory.store, workflow_id)
        mine = [c for c in commits if c.provenance.tenant == self.memory.tenant]
        if not mine:
            raise ToolError(
                f"no commits by workflow {workflow_id!r} in tenant {self.memory.tenant}"
            )
        steps = [self._readable(step_json(c)) for c in mine]
        blocks = [
            quote("recalled", self._source(c, run), s, s["agent"])
            for c, s in zip(mine, steps, strict=True)
        ]
        return views.result(Steps(workflow_id=workflow_id, steps=tuple(steps)), blocks, "")

    def _source(self, commit: CommitRecord, run: Namespace) -> MemoryRef:
        """What a step's quote names as its source: its first readable write, else its run."""
        for ref in commit.writes:
            if self.memory.grants.allows("read", ref.namespace):
                return ref
        return MemoryRef(namespace=run, key="commit", version=commit.seq, commit_seq=commit.seq)

    def _readable(self, step: dict[str, Any]) -> dict[str, Any]:
        """A step with the references it read and wrote outside the read grants left out."""

        def allowed(refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [r for r in refs if self.memory.grants.allows("read", tuple(r["namespace"]))]

        return {**step, "reads": allowed(step["reads"]), "writes": allowed(step["writes"])}
