"""The inspector in a real browser against a real dev server and worker: the research team's
steps, what a step read, an entry's history and diff, search, live updates, and both links
with the Temporal UI (whose codec endpoint shows each step's output text)."""

from __future__ import annotations

import asyncio

from playwright.async_api import Page, expect
from temporalio.api.sdk.v1 import WorkflowMetadata

from tests.ui.stack import TENANT, Stack
from workflows.contracts import ChainResult


async def test_workflow_page_shows_each_step_and_what_it_read(
    page: Page, stack: Stack, team_run: tuple[str, ChainResult]
) -> None:
    workflow_id, result = team_run
    await page.goto(f"{stack.ui}/workflows/{workflow_id}")

    names = await page.locator("li.step .step-name").all_inner_texts()
    agent_steps = [n for n in names if n != "(ingest)"]
    assert len(agent_steps) == len(result.steps) == 8
    # In commit order, where the parallel researchers may finish in any order.
    assert sorted(agent_steps) == sorted(s.step for s in result.steps)

    first_writer = page.locator("li.step", has=page.locator(".step-name", has_text="writer"))
    first_writer = first_writer.first
    await first_writer.locator("summary").click()
    reads = first_writer.locator(".reads li")
    await expect(reads.first).to_be_visible()
    read_texts = await reads.all_inner_texts()
    for i in (1, 2, 3):
        assert f"{TENANT}/run/{workflow_id} output:research-{i} v1" in read_texts
    writes = await first_writer.locator(".writes li").all_inner_texts()
    assert f"{TENANT}/run/{workflow_id} output:writer v1" in writes


async def test_entry_history_shows_provenance_and_a_diff(
    page: Page, stack: Stack, team_run: tuple[str, ChainResult]
) -> None:
    workflow_id, _ = team_run
    await page.goto(f"{stack.ui}/workflows/{workflow_id}")
    last_writer = page.locator("li.step", has=page.locator(".step-name", has_text="writer")).last
    await last_writer.locator("summary").click()
    await last_writer.locator(".writes a", has_text="output:writer v2").click()

    rows = page.locator("#versions tbody tr")
    await expect(rows).to_have_count(2)
    v2 = await page.locator("#v2").inner_text()
    assert "writer" in v2 and workflow_id in v2
    diff = page.locator("#diff table.diff")
    await expect(diff).to_be_visible()
    assert "Revised report" in (await diff.inner_text()).replace("\xa0", " ")
    assert await diff.locator(".diff_chg, .diff_add").count() > 0


async def test_search_highlights_hits(
    page: Page, stack: Stack, team_run: tuple[str, ChainResult]
) -> None:
    await page.goto(f"{stack.ui}/search")
    await page.fill("input[name=prefix]", TENANT)
    await page.fill("input[name=q]", "durable")
    await page.click("#search-form button")

    hits = page.locator("#hits li")
    await expect(hits.first).to_be_visible()
    marks = await page.locator("#hits mark").all_inner_texts()
    assert marks and all(m.lower() == "durable" for m in marks)


async def test_namespace_tree_counts_entries(
    page: Page, stack: Stack, team_run: tuple[str, ChainResult]
) -> None:
    workflow_id, _ = team_run
    await page.goto(stack.ui)
    expected = sum(n for _, n in await stack.store.namespaces((TENANT,)))
    tenant = page.locator("#tree > li").filter(has=page.locator(f"a[href='/ns/{TENANT}']"))
    assert await tenant.locator(":scope > .count").inner_text() == str(expected)
    await tenant.locator(f"a[href='/ns/{TENANT}/run/{workflow_id}']").click()
    await expect(page.locator("#entries")).to_contain_text("output:writer")


async def test_temporal_ui_link_shows_the_steps_output_text(
    page: Page, stack: Stack, team_run: tuple[str, ChainResult]
) -> None:
    workflow_id, result = team_run
    planner = await stack.store.get(result.steps[0].output.namespace, "output:planner")
    first_line = str(planner.value["text"]).splitlines()[0]  # type: ignore[index]

    await page.goto(f"{stack.ui}/workflows/{workflow_id}")
    await page.click("#temporal-link")
    await expect(page).to_have_url(
        f"{stack.temporal_ui}/namespaces/default/workflows/{workflow_id}"
    )
    # The UI decoded the result through the Cairn UI's codec endpoint: the text beside the ref.
    await expect(page.get_by_text('"output_text"').first).to_be_visible()
    await expect(page.get_by_text(first_line).first).to_be_visible()


async def test_running_workflow_updates_live_and_links_back(
    page: Page, stack: Stack, team_run: tuple[str, ChainResult]
) -> None:
    workflow_id = "research-live"
    await page.goto(f"{stack.ui}/workflows/{workflow_id}")
    await expect(page.locator("#no-steps")).to_be_visible()
    await page.evaluate("window.__notReloaded = true")

    run = asyncio.create_task(stack.run_team(workflow_id))
    # The corpus ingest commit, then the team's 8 steps, each appearing as it commits.
    await expect(page.locator("li.step")).to_have_count(9, timeout=60_000)
    _, result = await run
    assert result.status == "completed"
    assert await page.evaluate("window.__notReloaded") is True
    await expect(page.locator("#no-steps")).to_have_count(0)

    # The Temporal UI's current details for the workflow link back to this page.
    handle = stack.client.get_workflow_handle(workflow_id)
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert f"({stack.ui}/workflows/{workflow_id})" in metadata.current_details
