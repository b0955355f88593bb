"""The README's examples work as written (with the offline model swapped in)."""

from __future__ import annotations

import importlib
import re
import sys
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities import AgentRegistry
from cairn.runtime import Settings, build_worker
from memory import MemoryStore
from workflows.contracts import ChainSpec

README = (Path(__file__).parents[1] / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def test_the_declarative_team_example_is_a_valid_chain_spec():
    spec = ChainSpec.model_validate_json(blocks("json")[0])
    assert [n.kind for n in spec.nodes] == ["parallel", "loop", "approval"]


async def test_the_python_workflow_example_runs(
    temporal_env: WorkflowEnvironment, tmp_path: Path, task_queue: str, sqlite_url: str
):
    source = blocks("python")[0]
    source = re.sub(r'model="(openai|anthropic):[^"]+"', 'model="scripted"', source)
    module_name = f"readme_example_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module_name}.py").write_text(source)
    # On sys.path: the workflow sandbox re-imports the module by name.
    sys.path.insert(0, str(tmp_path))
    module = importlib.import_module(module_name)

    registry = AgentRegistry()
    reviews = iter(["Too long.\nVERDICT: revise", "Lovely.\nVERDICT: approve"])
    registry.script("writer")(lambda system, messages, tools: "old pond / frog leaps in")
    registry.script("critic")(lambda system, messages, tools: next(reviews))
    store = await MemoryStore.open(sqlite_url)
    try:
        settings = Settings(task_queue=task_queue, shutdown_grace=1)
        async with build_worker(
            temporal_env.client, store, settings, registry, [module.HaikuWorkflow]
        ):
            result = await temporal_env.client.execute_workflow(
                module.HaikuWorkflow.run,
                "frogs",
                id=f"haiku-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
        assert result == "old pond / frog leaps in"
        commits = await store.list_commits(tenant="acme")
        assert [c.provenance.agent for c in commits] == ["writer", "critic", "writer", "critic"]
    finally:
        await store.close()
        sys.modules.pop(module_name, None)
        sys.path.remove(str(tmp_path))
