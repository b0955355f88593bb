"""``fork`` and ``forget`` from the inspector: a confirmation form, then a POST that does it.

Only with write access (``cairn ui --write``); every POST carries the form's CSRF token, and
``forget`` also the prefix typed again. Without write access these routes answer 403.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cairn.cli.memory import ns_text
from cairn.ui.pages import Pages, int_param, namespace_param
from cairn.ui.security import csrf_ok

PRINCIPAL = "cairn-ui"


class Actions:
    """The confirmed write actions, sharing the pages' store, configuration and templates."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def _require_write(self) -> None:
        if not self.pages.config.write:
            raise HTTPException(403, "this Cairn UI is read-only: start it with --write")

    async def _checked_form(self, request: Request) -> dict[str, str]:
        self._require_write()
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not csrf_ok(self.pages.config, request, fields.get("csrf")):
            raise HTTPException(403, "missing or invalid CSRF token: reload the form and retry")
        return fields

    async def fork_form(self, request: Request) -> Response:
        """Ask before forking a namespace (as of a commit) into a new one."""
        self._require_write()
        src = namespace_param(request.query_params.get("src", ""), "source namespace")
        as_of = int_param(request, "as_of")
        return self.pages.render(request, "fork.html", src=src, as_of=as_of)

    async def fork(self, request: Request) -> Response:
        """Fork, then show the new namespace."""
        fields = await self._checked_form(request)
        src = namespace_param(fields.get("src", ""), "source namespace")
        dst = namespace_param(fields.get("dst", ""), "destination namespace")
        raw = fields.get("as_of", "").strip()
        if raw and not raw.isdigit():
            raise HTTPException(400, f"as_of must be a commit number, got {raw[:40]!r}")
        try:
            await self.pages.store.fork(src, dst, as_of=int(raw) if raw else None)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        self.pages.counts.clear()
        return RedirectResponse(f"/ns/{ns_text(dst)}", status_code=303)

    async def forget_form(self, request: Request) -> Response:
        """Ask before deleting everything under a prefix, history included."""
        self._require_write()
        prefix = namespace_param(request.query_params.get("prefix", ""), "prefix")
        counts = await self.pages.counts.get(prefix, limit=100_000)
        entries = sum(c for _, c in counts)
        return self.pages.render(request, "forget.html", prefix=prefix, entries=entries)

    async def forget(self, request: Request) -> Response:
        """Forget, once the prefix was typed again; then show what was deleted."""
        fields = await self._checked_form(request)
        prefix = namespace_param(fields.get("prefix", ""), "prefix")
        if fields.get("confirm", "").strip().strip("/") != ns_text(prefix):
            raise HTTPException(400, f"type {ns_text(prefix)!r} to confirm forgetting it")
        counts = await self.pages.store.forget(prefix, principal=PRINCIPAL)
        self.pages.counts.clear()
        return self.pages.render(request, "forgotten.html", prefix=prefix, counts=counts)
