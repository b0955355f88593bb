"""Command line: ``python -m bench [--full] [--only NAME ...] [--json PATH]``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import psycopg

from bench.runner import Profile, discover, run

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _reachable(url: str) -> bool:
    libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(libpq, connect_timeout=5):
            return True
    except psycopg.OperationalError as error:
        print(f"PostgreSQL at {url} is unreachable, skipping it: {error}", file=sys.stderr)
        return False


def main(argv: list[str]) -> int:
    registry = discover()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the long profile (default: quick)")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(registry),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(sorted(registry))}",
    )
    parser.add_argument("--json", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CAIRN_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="SQLAlchemy URL of the PostgreSQL server; 'none' to skip (default: %(default)s)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the tables as markdown here")
    parser.add_argument("--workdir", type=Path, help="where SQLite files go (default: a temp dir)")
    args = parser.parse_args(argv)
    postgres = None if args.postgres == "none" or not _reachable(args.postgres) else args.postgres
    workdir = Path(tempfile.mkdtemp(prefix="cairn-bench-", dir=args.workdir))
    try:
        profile = Profile(full=args.full, postgres_url=postgres, workdir=workdir)
        return run(args.only or list(registry), profile, args.json, argv, args.markdown)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
