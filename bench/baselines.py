"""The plain-Temporal baselines Cairn's workflows are compared with (deterministic).

`BareChainWorkflow` runs N no-op activities in a row: the floor for a step on Temporal.
`ByValueWorkflow` passes the whole accumulated context through every activity's input and
output, the usual way to keep agent context without external memory; its history grows with
the context. Both record what `workflow.info()` says about their history after every step.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ConfigDict

TIMEOUT = timedelta(minutes=10)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class NoopIn(_Frozen):
    step: str


class NoopOut(_Frozen):
    step: str


class BareInput(_Frozen):
    steps: int


class BareResult(_Frozen):
    steps: int


@activity.defn(name="bench_noop")
async def noop(inp: NoopIn) -> NoopOut:
    return NoopOut(step=inp.step)


@workflow.defn
class BareChainWorkflow:
    @workflow.run
    async def run(self, inp: BareInput) -> BareResult:
        for i in range(inp.steps):
            await workflow.execute_activity(
                noop, NoopIn(step=f"s{i + 1}"), start_to_close_timeout=TIMEOUT
            )
        return BareResult(steps=inp.steps)


class ContextIn(_Frozen):
    step: int
    context: str


class ContextOut(_Frozen):
    context: str


class ByValueInput(_Frozen):
    steps: int
    context: str


class HistoryPoint(_Frozen):
    step: int
    bytes: int
    events: int
    suggested: bool


class ByValueResult(_Frozen):
    points: tuple[HistoryPoint, ...]


def step_text(step: int, size: int) -> str:
    """A step's deterministic output of ``size`` characters."""
    unit = f"[step {step}] finding, evidence and reasoning. "
    return (unit * (size // len(unit) + 1))[:size]


@activity.defn(name="bench_by_value_step")
async def by_value_step(inp: ContextIn) -> ContextOut:
    """Append this step's output to the context, keeping its size (a sliding window)."""
    new = step_text(inp.step, min(len(inp.context), 2000))
    return ContextOut(context=inp.context[len(new) :] + new)


@workflow.defn
class ByValueWorkflow:
    @workflow.run
    async def run(self, inp: ByValueInput) -> ByValueResult:
        context = inp.context
        points = []
        for i in range(1, inp.steps + 1):
            out = await workflow.execute_activity(
                by_value_step, ContextIn(step=i, context=context), start_to_close_timeout=TIMEOUT
            )
            context = out.context
            info = workflow.info()
            points.append(
                HistoryPoint(
                    step=i,
                    bytes=info.get_current_history_size(),
                    events=info.get_current_history_length(),
                    suggested=info.is_continue_as_new_suggested(),
                )
            )
        return ByValueResult(points=tuple(points))
