"""A deliberately incompatible `ChainWorkflow`, for proving the replay tests catch one."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.chain import ChainWorkflow
    from workflows.contracts import ChainResult, ChainSpec, Write


@workflow.defn(name="ChainWorkflow")
class ChainWorkflowWithoutIngest(ChainWorkflow):
    """The same workflow type, changed to skip `Write` nodes: old histories no longer fit."""

    @workflow.run
    async def run(self, spec: ChainSpec) -> ChainResult:
        nodes = tuple(n for n in spec.nodes if not isinstance(n, Write))
        return await super().run(spec.model_copy(update={"nodes": nodes}))
