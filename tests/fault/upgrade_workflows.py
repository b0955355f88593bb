"""A user's workflow in three versions, for the upgrade scenario (deterministic).

Version 1 greets, waits for ``proceed``, and finishes. Version 2 adds a review step before the
wait and an audit step after it, each behind `workflow.patched`, so that runs started on
version 1 replay unchanged. The broken version 2 adds the review without a patch.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import AgentSpec
    from memory.context import ContextSpec
    from workflows.steps import run_step

AGENT = AgentSpec(
    model="scripted", name="echo", instructions="Echo.", context=ContextSpec(transcript=None)
)
WAIT = timedelta(minutes=2)


class _Onboarding:
    def __init__(self) -> None:
        self.go = False
        self.done: list[str] = []

    async def step(self, name: str, tenant: str) -> None:
        self.done.append((await run_step(AGENT, name, f"do {name}", tenant=tenant)).step)

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.query
    def steps(self) -> list[str]:
        return self.done


@workflow.defn(name="Onboarding")
class OnboardingV1(_Onboarding):
    @workflow.run
    async def run(self, tenant: str) -> list[str]:
        await self.step("greet", tenant)
        await workflow.wait_condition(lambda: self.go, timeout=WAIT)
        await self.step("finish", tenant)
        return self.done


@workflow.defn(name="Onboarding")
class OnboardingV2(_Onboarding):
    @workflow.run
    async def run(self, tenant: str) -> list[str]:
        await self.step("greet", tenant)
        if workflow.patched("onboarding-review"):
            await self.step("review", tenant)
        await workflow.wait_condition(lambda: self.go, timeout=WAIT)
        if workflow.patched("onboarding-audit"):
            await self.step("audit", tenant)
        await self.step("finish", tenant)
        return self.done


@workflow.defn(name="Onboarding")
class OnboardingV2Unpatched(_Onboarding):
    @workflow.run
    async def run(self, tenant: str) -> list[str]:
        await self.step("greet", tenant)
        await self.step("review", tenant)
        await workflow.wait_condition(lambda: self.go, timeout=WAIT)
        await self.step("finish", tenant)
        return self.done
