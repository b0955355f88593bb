"""`ChainWorkflow`: runs a team defined as data (deterministic).

Steps run as `agent_step` activities; their outputs live in memory under the run namespace
``(tenant, "run", <workflow id>)`` and only `StepResult` references pass through the workflow,
so history stays small however large the context grows. A sub-team runs as a child workflow.
A long chain continues as new between nodes when Temporal suggests it, carrying the step
references so far (`ChainResume`), so no chain reaches Temporal's history limits.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.contracts import (
        AgentSpec,
        MemoryWrite,
        StepResult,
        WriteInput,
        run_namespace,
    )
    from workflows.contracts import (
        STEP_PREVIEW_CHARS,
        Approval,
        ChainProgress,
        ChainResult,
        ChainResume,
        ChainSpec,
        Decision,
        DecisionAck,
        Handoff,
        Loop,
        Parallel,
        Step,
        SubTeam,
        Write,
    )
    from workflows.links import inspector_link
    from workflows.search_attributes import SESSION, TEAM, TENANT, upsert_missing
    from workflows.steps import begin_on, memory_store, run_step, write_memory


# The workflow.patched id guarding continue-as-new: runs recorded before it was added replay
# without continuing (their histories have no marker); every run after it may continue.
CONTINUE_AS_NEW_PATCH = "chain-continue-as-new"


class _Rejected(Exception):
    """An approval was rejected: the chain stops with status "rejected"."""


# Input that fails validation (a malformed start or continue-as-new payload, a task over its
# size limit) can never succeed: it fails the workflow instead of retrying its task forever.
@workflow.defn(failure_exception_types=[ValidationError])
class ChainWorkflow:
    """Run a `ChainSpec`: its nodes in order, each node as its kind says."""

    def __init__(self) -> None:
        self._results: list[StepResult] = []
        self._current: set[str] = set()
        self._children: list[str] = []
        self._pending: Approval | None = None
        self._decisions: dict[str, Decision] = {}
        self._status = "running"

    @workflow.run
    async def run(self, spec: ChainSpec) -> ChainResult:
        """Run the chain; return every step's reference and the last step's as ``final``."""
        self._spec = spec
        begin_on(spec.store)
        first = 0
        if spec.resume is not None:
            first = spec.resume.next_node
            self._results = list(spec.resume.results)
            self._children = list(spec.resume.children)
        upsert_missing(team_search_attributes(spec).search_attributes)
        try:
            for index in range(first, len(spec.nodes)):
                if index > first and self._should_continue():
                    await self._continue_as_new(index)
                await self._node(spec.nodes[index])
        except _Rejected:
            self._status = "rejected"
            return self._result("rejected")
        self._status = "completed"
        return self._result("completed")

    @staticmethod
    def _should_continue() -> bool:
        # Asked only once Temporal suggests it, so the patch marker is recorded only by runs
        # that do continue, right before they do.
        return workflow.info().is_continue_as_new_suggested() and workflow.patched(
            CONTINUE_AS_NEW_PATCH
        )

    async def _continue_as_new(self, next_node: int) -> None:
        # Between nodes no approval is pending, but a rejected `decide` may still be running.
        await workflow.wait_condition(workflow.all_handlers_finished)
        resume = ChainResume(
            next_node=next_node, results=tuple(self._results), children=tuple(self._children)
        )
        update = {"resume": resume, "store": memory_store()}
        workflow.continue_as_new(self._spec.model_copy(update=update))

    def _result(self, status: str) -> ChainResult:
        # The result repeats every step, so each is trimmed to what a listing shows; ``final``
        # stays whole. (A result is no replay's concern: runs recorded before replay as well.)
        return ChainResult(
            status="rejected" if status == "rejected" else "completed",
            steps=tuple(
                r.model_copy(update={"store": None, "preview": r.preview[:STEP_PREVIEW_CHARS]})
                for r in self._results
            ),
            final=self._results[-1] if self._results else None,
            children=tuple(self._children),
        )

    @workflow.query
    def progress(self) -> ChainProgress:
        """How far the chain is: steps done, steps running, and any approval it waits for."""
        return ChainProgress(
            status=self._status,
            done=len(self._results),
            current=tuple(sorted(self._current)),
            waiting_for=self._pending.name if self._pending else None,
        )

    @workflow.update
    async def decide(self, decision: Decision) -> DecisionAck:
        """Answer the approval the chain is waiting for."""
        self._decisions[decision.approval] = decision
        return DecisionAck(approval=decision.approval, approved=decision.approve)

    @decide.validator
    def _check_decision(self, decision: Decision) -> None:
        pending = self._pending
        # Messages name the field and the rule, never the value sent (see activities.failures).
        if pending is None or pending.name != decision.approval:
            raise ValueError(
                "approval: no pending approval has this name"
                + (f"; waiting for {pending.name!r}" if pending else "")
            )
        if decision.approval in self._decisions:
            raise ValueError("approval: this approval is already decided")
        if decision.edit is not None and pending.edits is None:
            raise ValueError("edit: this approval has no output to edit")

    async def _node(
        self, node: Step | Parallel | Handoff | Loop | Approval | Write | SubTeam
    ) -> None:
        if isinstance(node, Step):
            await self._step(node)
        elif isinstance(node, Parallel):
            await asyncio.gather(*(self._step(s) for s in node.steps))
        elif isinstance(node, Handoff):
            await self._handoff(node)
        elif isinstance(node, Loop):
            await self._loop(node)
        elif isinstance(node, Approval):
            await self._approval(node)
        elif isinstance(node, Write):
            await write_memory(
                WriteInput(tenant=self._spec.tenant, writes=node.writes, agent=self._spec.name),
                f"write {len(node.writes)} entries",
            )
        else:
            await self._team(node)

    def _agent(self, step: Step) -> AgentSpec:
        agent = self._spec.agent(step.agent)
        if not step.sees:
            return agent
        outputs = (*agent.context.outputs, *step.sees)
        return agent.model_copy(
            update={"context": agent.context.model_copy(update={"outputs": outputs})}
        )

    async def _step(self, step: Step, task: str | None = None, label: str = "") -> StepResult:
        name = step.step_name
        self._current.add(name)
        self._details(f"running {name}{label}")
        try:
            result = await run_step(
                self._agent(step),
                name,
                task if task is not None else step.task.replace("{input}", self._spec.input),
                tenant=self._spec.tenant,
                session=self._spec.session,
                user=self._spec.user,
            )
        finally:
            self._current.discard(name)
        self._results.append(result)
        self._details(f"{name}{label} done: {result.preview[:80]}")
        return result

    async def _handoff(self, node: Handoff) -> None:
        result = await self._step(node.start)
        names = {a.name for a in self._spec.agents}
        for hop in range(node.max_hops):
            target = result.handoff
            if target is None or target not in names:
                return
            nxt = Step(agent=target, name=f"{target}-hop{hop + 1}", sees=(result.step,))
            result = await self._step(
                nxt, task=self._spec.input, label=f" (handoff from {result.agent})"
            )

    async def _loop(self, node: Loop) -> None:
        for round_ in range(1, node.max_rounds + 1):
            last: StepResult | None = None
            for step in node.steps:
                last = await self._step(step, label=f" (round {round_}/{node.max_rounds})")
            if last is not None and last.verdict == node.until:
                return

    async def _approval(self, node: Approval) -> None:
        self._pending = node
        self._details(f"waiting for approval {node.name!r}: {node.prompt}")
        try:
            await workflow.wait_condition(
                lambda: node.name in self._decisions, timeout=node.timeout
            )
        except TimeoutError:
            pass
        finally:
            self._pending = None
        # Popped, so that a later approval of the same name waits for its own decision.
        decision = self._decisions.pop(node.name, None) or Decision(
            approval=node.name, approve=node.default == "approve", by="timeout"
        )
        run = "/".join(run_namespace(self._spec.tenant, workflow.info().workflow_id))
        writes = [
            MemoryWrite(
                namespace=run,
                key=f"approval:{node.name}",
                value={
                    "approved": decision.approve,
                    "by": decision.by,
                    "edited": decision.edit is not None,
                },
            )
        ]
        if decision.edit is not None and node.edits is not None:
            writes.append(
                MemoryWrite(
                    namespace=run,
                    key=f"output:{node.edits}",
                    value={
                        "text": decision.edit,
                        "agent": decision.by,
                        "step": node.edits,
                        "edited": True,
                    },
                )
            )
        await write_memory(
            WriteInput(
                tenant=self._spec.tenant, writes=tuple(writes), agent=f"human:{decision.by}"[:64]
            ),
            f"record decision on {node.name}",
        )
        if not decision.approve:
            raise _Rejected(node.name)

    async def _team(self, node: SubTeam) -> None:
        child = node.team.model_copy(
            update={
                "input": node.task.replace("{input}", self._spec.input),
                "session": self._spec.session,
                "user": self._spec.user,
                "store": memory_store(),
            }
        )
        child_id = f"{workflow.info().workflow_id}.{child.name}.{len(self._children) + 1}"
        self._children.append(child_id)
        self._details(f"running sub-team {child.name}")
        result = await workflow.execute_child_workflow(
            ChainWorkflow.run,
            child,
            id=child_id,
            parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
            search_attributes=team_search_attributes(child),
            static_summary=f"sub-team {child.name}",
        )
        self._results.extend(result.steps)

    def _details(self, text: str) -> None:
        done = len(self._results)
        link = inspector_link(self._spec.ui_url, workflow.info().workflow_id)
        workflow.set_current_details(f"{self._spec.name}: {done} steps done; {text}{link}")


def team_search_attributes(spec: ChainSpec) -> TypedSearchAttributes:
    """The search attributes a chain's workflow carries (tenant, team, session)."""
    pairs = [SearchAttributePair(TENANT, spec.tenant), SearchAttributePair(TEAM, spec.name)]
    if spec.session:
        pairs.append(SearchAttributePair(SESSION, spec.session))
    return TypedSearchAttributes(pairs)
