"""The process the crash test kills: ``python -m bench.crash_child {langgraph,cairn} ...``.

Every agent call is appended to ``--log`` (``<agent> <turn> <pid>``), so the parent counts calls
across processes. With ``--block writer`` the writer, once called, prints ``writer-started`` on
stdout and waits forever: by then the planner and researcher have finished, and the parent
SIGKILLs this process.

``langgraph``: run (or with ``--resume``, resume) one invocation of the chain on a SqliteSaver,
with LangGraph's ``--durability`` ("async", its default, or "sync").
``cairn``: serve a Cairn worker (the production `build_worker`) on ``--address``/``--queue``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import threading
from pathlib import Path

BLOCKED = "writer-started"


def langgraph(args: argparse.Namespace) -> None:
    from langgraph.checkpoint.sqlite import SqliteSaver

    from bench.multiagent import langgraph_chain, langgraph_input

    never = threading.Event()

    def on_call(agent: str, turn: int) -> None:
        with Path(args.log).open("a") as f:
            f.write(f"{agent} {turn} {os.getpid()}\n")
        if agent == args.block:
            print(BLOCKED, flush=True)
            never.wait()

    conn = sqlite3.connect(args.db, check_same_thread=False)
    graph = langgraph_chain(SqliteSaver(conn), on_call)
    config = {"configurable": {"thread_id": args.thread}}
    inp = None if args.resume else langgraph_input(args.turn)
    graph.invoke(inp, config, durability=args.durability)
    print("done", flush=True)


async def cairn(args: argparse.Namespace) -> None:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from bench.devserver import cairn_worker
    from bench.multiagent import cairn_registry
    from memory import MemoryStore

    never = asyncio.Event()

    async def wait_forever() -> None:
        await never.wait()

    def on_call(agent: str, turn: int) -> object:
        with Path(args.log).open("a") as f:
            f.write(f"{agent} {turn} {os.getpid()}\n")
        if agent == args.block:
            print(BLOCKED, flush=True)
            return wait_forever()
        return None

    client = await Client.connect(args.address, data_converter=pydantic_data_converter)
    store = await MemoryStore.open(f"sqlite:///{args.db}")
    async with cairn_worker(client, store, args.queue, cairn_registry(on_call)):  # type: ignore[arg-type]
        print("ready", flush=True)
        await never.wait()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crash_child")
    parser.add_argument("side", choices=("langgraph", "cairn"))
    parser.add_argument("--db", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--block", default=None)
    parser.add_argument("--thread", default="session")
    parser.add_argument("--turn", type=int, default=1)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--durability", choices=("async", "sync", "exit"), default="async")
    parser.add_argument("--address", default="")
    parser.add_argument("--queue", default="")
    args = parser.parse_args(argv)
    if args.side == "langgraph":
        langgraph(args)
    else:
        asyncio.run(cairn(args))


if __name__ == "__main__":
    main(sys.argv[1:])
