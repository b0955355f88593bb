"""``cairn memory ...``: the memory inspector's commands; the work is done in `cairn.cli.memory`.

The commands are built by `memory_app` around what `cairn.cli.app` gives it (how to run a
command and where the memory is), so the environment is read in `cairn.cli.app` only.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cairn.cli.memory import View

Runner = Callable[[typer.Context, Callable[[], Awaitable["View"]], bool], None]
"""Runs a command's work and prints its view (as JSON with ``--json``)."""

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (and nothing else) on stdout.")]
MemoryUrl = Annotated[
    str | None,
    typer.Option(
        "--memory-url",
        help="sqlite:///path or postgresql+psycopg://... "
        "[default: CAIRN_MEMORY_URL, else sqlite:///.cairn/memory.db]",
        show_default=False,
    ),
]
Namespace = Annotated[str, typer.Argument(help="A namespace, tenant first: acme/session/s-42.")]
Prefix = Annotated[str, typer.Argument(help="A namespace prefix, tenant first: acme/run.")]
Key = Annotated[str, typer.Argument(help="The entry's key, e.g. output:writer.")]
Tags = Annotated[
    str | None, typer.Option("--tags", help="Comma-separated tags every result must carry.")
]
AsOf = Annotated[int | None, typer.Option("--as-of", min=0, help="A commit sequence number.")]


UNENCRYPTED_HISTORY_WARNING = (
    "cairn: warning: payload encryption is off (CAIRN_ENCRYPTION_KEYS is not set), so what "
    "this subject's sessions sent through Temporal (turns, replies, step previews, failures) "
    "stays readable in their workflow histories until the Temporal namespace's retention "
    "period ends; forget cannot delete it there"
)
"""Printed by ``cairn memory forget`` without encryption (see the README's Forgetting)."""


def memory_app(run: Runner, url: Callable[[str | None], str]) -> typer.Typer:
    """The ``cairn memory`` command group.

    Args:
        run: Runs a command's work, reporting errors, and prints its view.
        url: The memory URL to use given the ``--memory-url`` option (None when not given).
    """
    app = typer.Typer(
        help="Inspect and manage the memory store (CAIRN_MEMORY_URL, or --memory-url).\n\n"
        "Namespaces are written tenant first with slashes: acme/session/s-42.",
        no_args_is_help=True,
    )

    @app.command("ls")
    def memory_ls(
        ctx: typer.Context,
        prefix: Annotated[
            str | None,
            typer.Argument(help="A namespace prefix, tenant first: acme/run [default: tenants]."),
        ] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
        tags: Tags = None,
        memory_url: MemoryUrl = None,
        as_json: JsonFlag = False,
    ) -> None:
        """List current entries at or under PREFIX: namespace, key, version, commit, agent.

        Without PREFIX, list the tenants that hold entries.
        """

        async def work() -> View:
            from cairn.cli import memory as cli_memory

            if prefix is None:
                return await cli_memory.tenants(url(memory_url))
            return await cli_memory.ls(url(memory_url), prefix, limit=limit, tags=tags)

        run(ctx, work, as_json)

    @app.command("get")
    def memory_get(
        ctx: typer.Context,
        namespace: Namespace,
        key: Key,
        as_of: AsOf = None,
        memory_url: MemoryUrl = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Print one entry's value and provenance: the current version, or as of a commit."""

        async def work() -> View:
            from cairn.cli import memory as cli_memory

            return await cli_memory.get(url(memory_url), namespace, key, as_of=as_of)

        run(ctx, work, as_json)

    @app.command("history")
    def memory_history(
        ctx: typer.Context,
        namespace: Namespace,
        key: Key,
        memory_url: MemoryUrl = None,
        as_json: JsonFlag = False,
    ) -> None:
        """List every version of a key: commit, time, and the agent and workflow that wrote it."""

        async def work() -> View:
            from cairn.cli import memory as cli_memory

            return await cli_memory.history(url(memory_url), namespace, key)

        run(ctx, work, as_json)

    @app.command("search")
    def memory_search(
        ctx: typer.Context,
        prefix: Prefix,
        query: Annotated[str, typer.Argument(help="Keywords to look for.")],
        limit: Annotated[
            int, typer.Option("--limit", min=1, max=100, help="At most this many.")
        ] = 10,
        tags: Tags = None,
        memory_url: MemoryUrl = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Keyword search over current entries and stream items under PREFIX, best first."""

        async def work() -> View:
            from cairn.cli import memory as cli_memory

            where = url(memory_url)
            return await cli_memory.search(where, prefix, query, limit=limit, tags=tags)

        run(ctx, work, as_json)

    @app.command("steps")
    def memory_steps(
        ctx: typer.Context,
        workflow_id: Annotated[str, typer.Argument(help="The workflow id, e.g. research-3fa2c1.")],
        memory_url: MemoryUrl = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Show each step of a workflow: agent, model, reads, writes, tokens and latency.

        Reads are the exact versions the step's context was built from; writes are everything
        its commit wrote. Example: cairn memory steps research-3fa2c1
        """

        async def work() -> View:
            from cairn.cli import memory as cli_memory

            return await cli_memory.steps(url(memory_url), workflow_id)

        run(ctx, work, as_json)

    @app.command("fork")
    def memory_fork(
        ctx: typer.Context,
        src: Annotated[str, typer.Argument(help="The namespace to copy, e.g. acme/session/s-42.")],
        dst: Annotated[str, typer.Argument(help="A new, empty namespace, e.g. acme/session/s-43.")],
        as_of: AsOf = None,
        memory_url: MemoryUrl = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Copy SRC's entries and streams (as of a commit) into the empty DST, in one commit."""

        async def work() -> View:
            from cairn.cli import memory as cli_memory

            return await cli_memory.fork(url(memory_url), src, dst, as_of=as_of)

        run(ctx, work, as_json)

    @app.command("forget")
    def memory_forget(
        ctx: typer.Context,
        prefix: Prefix,
        yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
        memory_url: MemoryUrl = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Delete everything at or under PREFIX, history included (an audit record keeps counts)."""
        if not yes:
            typer.echo(
                f"cairn: refusing to forget {prefix!r} without --yes: it deletes every entry, "
                "version and stream item under it for good",
                err=True,
            )
            raise typer.Exit(1)

        async def work() -> View:
            from cairn.cli import memory as cli_memory

            return await cli_memory.forget(url(memory_url), prefix)

        run(ctx, work, as_json)
        if not os.environ.get("CAIRN_ENCRYPTION_KEYS", "").strip():
            typer.echo(UNENCRYPTED_HISTORY_WARNING, err=True)

    @app.command("reindex")
    def memory_reindex(
        ctx: typer.Context,
        prefix: Annotated[
            str | None,
            typer.Argument(help="A namespace prefix, tenant first [default: the whole store]."),
        ] = None,
        batch_size: Annotated[
            int, typer.Option("--batch-size", min=1, max=10_000, help="Entries per batch.")
        ] = 256,
        memory_url: MemoryUrl = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Embed entries written before their namespace had an embedder (CAIRN_EMBEDDER).

        Resumable and idempotent (a rerun embeds only what is missing); safe while workers
        write. Example: CAIRN_EMBEDDER=offline cairn memory reindex acme
        """

        async def work() -> View:
            from cairn.cli.reindex import reindex
            from cairn.runtime import settings_from_env, store_embedders

            embedders = store_embedders(settings_from_env())
            where = url(memory_url)
            return await reindex(
                where, prefix, embedders, batch_size=batch_size, show_progress=not as_json
            )

        run(ctx, work, as_json)

    @app.command("migrate")
    def memory_migrate(
        ctx: typer.Context, memory_url: MemoryUrl = None, as_json: JsonFlag = False
    ) -> None:
        """Create or upgrade the memory schema and print its version (safe to run concurrently)."""

        async def work() -> View:
            from cairn.cli import memory as cli_memory

            return await cli_memory.migrate(url(memory_url))

        run(ctx, work, as_json)

    return app
