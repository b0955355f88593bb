"""One stack (dev server with UI, worker, Cairn UI), one browser and one team run per module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.ui.stack import Stack, chromium, running_stack
from workflows.contracts import ChainResult

# Two cores shared with other work: pages (the Temporal UI's above all) may take a while.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path_factory.mktemp("ui")) as running:
        yield running


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
async def team_run(stack: Stack) -> tuple[str, ChainResult]:
    """The demo's research team, run to completion once for the module."""
    return await stack.run_team()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    opened = await context.new_page()
    opened.set_default_timeout(30_000)
    yield opened
    await context.close()
