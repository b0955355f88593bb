"""``cairn memory reindex``: embed entries written before their namespace had an embedder."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cairn.cli.memory import View, ns_text, open_store
from memory.embedding import EmbeddingConfig
from memory.namespace import parse


async def reindex(
    url: str,
    prefix: str | None,
    embedders: list[EmbeddingConfig],
    *,
    batch_size: int = 256,
    show_progress: bool = True,
) -> View:
    """Backfill vectors under ``prefix`` (every tenant's when None), with a progress bar.

    Safe to interrupt and to rerun (it resumes), and to run while workers write.
    """
    if not embedders:
        raise ValueError(
            "cairn memory reindex: no embedder configured; set CAIRN_EMBEDDER (offline, hashing "
            "or openai:<model>) and optionally CAIRN_EMBED_NAMESPACES"
        )
    store = await open_store(url, create=False, embedders=embedders)
    ns = parse(prefix) if prefix else ()
    where = ns_text(ns) if ns else "the whole store"
    # On stderr: stdout stays clean for --json.
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    bar = Progress(
        *columns, TimeRemainingColumn(), console=Console(stderr=True), disable=not show_progress
    )
    try:
        with bar:
            task = bar.add_task(f"embedding {where}", total=None)

            def report(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            counts = await store.reindex(ns, batch_size=batch_size, progress=report)
    finally:
        await store.close()
    view = f"reindexed {where}: {counts['embedded']} embedded, {counts['skipped']} skipped"
    return {"prefix": ns_text(ns) if ns else None, **counts}, view
