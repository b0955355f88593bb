"""Contract: a store has one identity, written once, the same from every process that opens it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from memory import MemoryStore


async def test_the_id_is_written_once_and_read_by_every_opener(store_url: str) -> None:
    async with await MemoryStore.open(store_url) as first:
        identity = first.identity
        await first.setup()  # setup again (another worker starting) keeps it
        assert first.identity == identity
    async with await MemoryStore.open(store_url, migrate=False) as again:
        assert again.identity == identity
        assert again.store_id == identity.id
    assert len(identity.id) == 32


async def test_two_databases_have_two_ids(store_url: str, tmp_path: Path) -> None:
    async with (
        await MemoryStore.open(store_url) as one,
        await MemoryStore.open(f"sqlite:///{tmp_path / 'other.db'}") as other,
    ):
        assert one.store_id != other.store_id


async def test_the_name_carries_no_credentials(store_url: str) -> None:
    url = make_url(store_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password="hunter2")  # trust auth: the server ignores it
    async with await MemoryStore.open(url.render_as_string(hide_password=False)) as store:
        name = store.identity.name
    assert "hunter2" not in name and "@" not in name and "?" not in name
    assert name.startswith(("sqlite:///", "postgresql://"))
    assert str(url.database) in name
