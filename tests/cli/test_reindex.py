"""``cairn memory reindex``: backfills vectors from the command line, resumably."""

from __future__ import annotations

from pathlib import Path

from memory import MemoryStore
from tests.cli.conftest import cairn, clean_env


async def test_reindex_embeds_once_and_reports_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    store = await MemoryStore.open(url)
    async with store.commit() as c:
        c.put(("acme", "notes"), "tea", "Ada drinks green tea")
        c.put(("acme", "notes"), "train", "Bob takes the train")
    await store.close()
    env = clean_env(
        CAIRN_MEMORY_URL=url, CAIRN_EMBEDDER="hashing", CAIRN_EMBED_NAMESPACES="*/notes"
    )

    first = await cairn("memory", "reindex", "acme", "--json", env=env)
    again = await cairn("memory", "reindex", "--json", env=env)
    assert first.code == 0, first.err
    assert first.json() == {"prefix": "acme", "embedded": 2, "skipped": 0}
    assert again.json() == {"prefix": None, "embedded": 0, "skipped": 0}


async def test_reindex_without_an_embedder_says_which_variable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    await (await MemoryStore.open(url)).close()
    no_embedder = await cairn("memory", "reindex", env=clean_env(CAIRN_MEMORY_URL=url))
    no_embedder.fails_with("no embedder configured; set CAIRN_EMBEDDER")
    orphan = clean_env(CAIRN_MEMORY_URL=url, CAIRN_EMBED_NAMESPACES="acme/notes")
    (await cairn("memory", "reindex", env=orphan)).fails_with(
        "CAIRN_EMBED_NAMESPACES=acme/notes names patterns but CAIRN_EMBEDDER is not set"
    )
