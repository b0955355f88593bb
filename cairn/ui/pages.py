"""The inspector's pages: one handler per page, each a few store reads and one template.

Namespaces appear in URLs in their command-line form (``/ns/acme/run/research-1``); keys and
cursors travel as query parameters. Bad input (a malformed namespace, cursor or commit number)
is a 400 page naming what was wrong; a missing entry or workflow is a 404.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from cairn.cli.memory import ns_text, preview, step_record, workflow_commits
from cairn.cli.runs import ui_link
from cairn.ui import views
from cairn.ui.config import UIConfig
from cairn.ui.counts import NamespaceCounts
from cairn.ui.security import form_token
from memory import Entry, MemoryStore, NotFound
from memory.context import SUMMARY_KEY
from memory.namespace import parse

TEMPLATES = Path(__file__).parent / "templates"
TRANSCRIPT = "transcript"
TRANSCRIPT_PAGE = 200
SEARCH_LIMIT = 50


def int_param(request: Request, name: str, *, minimum: int = 0) -> int | None:
    """An optional integer query parameter; 400 naming it when it is not one."""
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < minimum or int(raw) >= 2**63:
        raise HTTPException(400, f"{name} must be a whole number >= {minimum}, got {raw[:40]!r}")
    return int(raw)


def namespace_param(text: str, what: str = "namespace") -> tuple[str, ...]:
    """A namespace from its URL form; 400 naming what is wrong with it."""
    try:
        return parse(text)
    except ValueError as error:
        raise HTTPException(400, f"bad {what} {text[:80]!r}: {error}") from None


class Pages:
    """The page handlers, bound to one store and one configuration."""

    def __init__(self, store: MemoryStore, config: UIConfig) -> None:
        self.store = store
        self.config = config
        env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
        self.templates = Jinja2Templates(env=env)
        env.globals["ns_text"] = ns_text
        env.globals["value_text"] = views.value_text
        env.globals["preview"] = preview
        env.globals["config"] = config
        env.filters["ns"] = ns_text
        self.hybrid = "mode" in inspect.signature(store.search).parameters
        self.counts = NamespaceCounts(store)

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        """Render a template with the request's CSRF token and the write flag."""
        context.setdefault("csrf", form_token(self.config, request) if self.config.write else "")
        response: Response = self.templates.TemplateResponse(
            request, name, context, status_code=status
        )
        return response

    def temporal_link(self, workflow_id: str) -> str | None:
        """The workflow's page in the Temporal UI, when one is configured."""
        url = self.config.temporal_ui_url
        return ui_link(url, self.config.temporal_namespace, workflow_id) if url else None

    # -- pages ----------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        """Tenants and namespaces as a tree, with entry counts."""
        counts = await self.counts.get(limit=100_000)
        tree = views.namespace_tree(counts)
        return self.render(request, "home.html", tree=tree, truncated=len(counts) >= 100_000)

    async def namespace(self, request: Request) -> Response:
        """One page of a namespace's entries, now or as of a commit (keyset pagination)."""
        ns = namespace_param(request.path_params["ns"])
        as_of = int_param(request, "as_of")
        cursor = request.query_params.get("cursor") or None
        try:
            page = await self.store.list(ns, limit=self.config.page_size, cursor=cursor)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        rows: list[tuple[Entry, Entry | None]] = []
        for entry in page.entries:
            then: Entry | None = entry
            if as_of is not None and entry.commit_seq > as_of:
                try:
                    then = await self.store.get(entry.namespace, entry.key, as_of=as_of)
                except NotFound:
                    then = None
            rows.append((entry, then))
        children = await self.counts.get(ns, limit=1000)
        return self.render(
            request,
            "namespace.html",
            ns=ns,
            rows=rows,
            as_of=as_of,
            cursor=cursor,
            next_cursor=page.next_cursor,
            children=[(n, c) for n, c in children if n != ns][:200],
            total=sum(c for _, c in children),
        )

    async def entry(self, request: Request) -> Response:
        """An entry's versions with provenance, and a side-by-side diff of two of them."""
        ns = namespace_param(request.path_params["ns"])
        key = request.query_params.get("key", "")
        if not key:
            raise HTTPException(400, "key is required: /entry/<namespace>?key=<key>")
        try:
            versions = await self.store.history(ns, key)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        except NotFound:
            raise HTTPException(404, f"no key {key!r} in {ns_text(ns)}") from None
        by_version = {v.version: v for v in versions}
        b = int_param(request, "b", minimum=1) or versions[-1].version
        a = int_param(request, "a", minimum=1) or max(1, b - 1)
        if a not in by_version or b not in by_version:
            raise HTTPException(400, f"{ns_text(ns)} {key!r} has versions 1 to {len(versions)}")
        diff = views.diff_table(by_version[a], by_version[b]) if a != b else None
        return self.render(
            request, "entry.html", ns=ns, key=key, versions=versions, a=a, b=b, diff=diff
        )

    async def workflow(self, request: Request) -> Response:
        """A workflow's steps as lineage: what each read and wrote, tokens and latency."""
        workflow_id = request.path_params["workflow_id"]
        steps = await self._steps(workflow_id)
        return self.render(
            request,
            "workflow.html",
            workflow_id=workflow_id,
            steps=steps,
            temporal=self.temporal_link(workflow_id),
        )

    async def workflow_steps(self, request: Request) -> Response:
        """The steps fragment the workflow page polls while it is open (live updates)."""
        workflow_id = request.path_params["workflow_id"]
        steps = await self._steps(workflow_id)
        response = self.render(request, "steps.html", workflow_id=workflow_id, steps=steps)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _steps(self, workflow_id: str) -> list[dict[str, Any]]:
        try:
            commits = await workflow_commits(self.store, workflow_id)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        return [{"commit": c, "record": step_record(c)} for c in commits]

    async def session(self, request: Request) -> Response:
        """A session's transcript, with its compaction summaries."""
        tenant, session = request.path_params["tenant"], request.path_params["session"]
        ns = namespace_param(f"{tenant}/session/{session}", "session")
        start = int_param(request, "start", minimum=1) or 1
        items = await self.store.read_stream(ns, TRANSCRIPT, start=start, limit=TRANSCRIPT_PAGE)
        try:
            summaries = await self.store.history(ns, SUMMARY_KEY)
        except NotFound:
            summaries = []
        more = len(items) == TRANSCRIPT_PAGE
        return self.render(
            request,
            "session.html",
            ns=ns,
            tenant=tenant,
            session=session,
            items=items,
            summaries=summaries,
            next_start=items[-1].seq + 1 if more else None,
        )

    async def search(self, request: Request) -> Response:
        """Search under a prefix, hits highlighted (hybrid when the store supports it)."""
        prefix_text = request.query_params.get("prefix", "").strip()
        query = request.query_params.get("q", "").strip()
        mode = request.query_params.get("mode", "keyword")
        hits: list[dict[str, Any]] = []
        if prefix_text and query:
            prefix = namespace_param(prefix_text, "prefix")
            kwargs: dict[str, Any] = {"limit": SEARCH_LIMIT}
            if self.hybrid:
                if mode not in ("keyword", "vector", "hybrid"):
                    raise HTTPException(
                        400, f"mode must be keyword, vector or hybrid, not {mode!r}"
                    )
                kwargs["mode"] = mode
            try:
                found = await self.store.search(prefix, query, **kwargs)
            except ValueError as error:
                raise HTTPException(400, str(error)) from None
            for hit in found:
                text = views.snippet(views.value_text(hit.value), query)
                hits.append({"hit": hit, "html": views.highlight(text, query)})
        return self.render(
            request,
            "search.html",
            prefix=prefix_text,
            q=query,
            mode=mode,
            hybrid=self.hybrid,
            hits=hits,
        )

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """Errors as a page (or plain text for the fragment the live script fetches)."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        if isinstance(exc, NotFound):
            status, detail = 404, str(exc)
        return HTMLResponse(
            self.templates.get_template("error.html").render(status=status, detail=detail),
            status_code=status,
        )
