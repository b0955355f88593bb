"""``make screenshots``: the README's pictures of the Cairn UI, taken from a real run.

Starts the same stack the browser tests use (dev server with its UI, worker, Cairn UI), runs
the demo's research team and a two-turn support session, and saves each main page as a PNG.
Usage: ``python -m tests.ui.screenshots [docs/screenshots]``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Page

from cairn.cli.runs import send
from tests.ui.stack import TENANT, Stack, chromium, running_stack
from workflows.contracts import SessionInput, Turn
from workflows.teams import support_agent

SESSION = "s-42"
TURNS = ("Hi, my name is Ada", "My invoices page is empty.", "Do you know my name?")


async def _session(stack: Stack) -> None:
    inp = SessionInput(
        tenant=TENANT, session=SESSION, user="ada", agent=support_agent(model="scripted")
    )
    for i, text in enumerate(TURNS, start=1):
        await send(
            stack.client, inp, Turn(message_id=f"m{i}", text=text), task_queue=stack.task_queue
        )


async def _shoot(page: Page, url: str, path: Path) -> None:
    await page.goto(url)
    await page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path}")


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as state:
        async with running_stack(Path(state)) as stack, chromium() as browser:
            workflow_id, result = await stack.run_team("research-3fa2c1")
            await _session(stack)
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(30_000)
            await _shoot(page, stack.ui, out / "namespaces.png")
            await page.goto(f"{stack.ui}/workflows/{workflow_id}")
            await page.locator("li.step summary").nth(5).click()
            await page.screenshot(path=str(out / "lineage.png"), full_page=True)
            print(f"wrote {out / 'lineage.png'}")
            ns = f"{TENANT}/run/{workflow_id}"
            await _shoot(page, f"{stack.ui}/entry/{ns}?key=output:writer", out / "diff.png")
            await _shoot(
                page, f"{stack.ui}/ns/{ns}?as_of={result.steps[4].commit_seq}", out / "as-of.png"
            )
            await _shoot(
                page, f"{stack.ui}/search?prefix={TENANT}&q=durable+memory", out / "search.png"
            )
            await _shoot(page, f"{stack.ui}/sessions/{TENANT}/{SESSION}", out / "session.png")
            await page.goto(f"{stack.temporal_ui}/namespaces/default/workflows/{workflow_id}")
            await page.get_by_text('"output_text"').first.wait_for()
            await page.screenshot(path=str(out / "temporal-ui-codec.png"))
            print(f"wrote {out / 'temporal-ui-codec.png'}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")))
