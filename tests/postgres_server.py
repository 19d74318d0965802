"""A throwaway PostgreSQL server for the tests (pytest plugin, registered in tests/conftest.py).

``postgres_url`` (session scope) starts one server for the whole run: ``initdb`` in a temporary
directory, ``pg_ctl start`` on a free loopback port, stopped and deleted at the end. Running as
root, both run as the ``postgres`` system user (PostgreSQL refuses root). ``postgres_db_url``
gives each test its own fresh database on that server. ``PostgresServer`` starts a private
server for tests that stop it (a history store that goes down mid-run).

The binaries are found on PATH or under ``/usr/lib/postgresql/*/bin`` (Debian). Set
``GUARDRAIL_TEST_POSTGRES_URL`` to use a server you run yourself. When no server can be
started the tests skip, except in CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

URL_ENV_VAR = "GUARDRAIL_TEST_POSTGRES_URL"
_SYSTEM_USER = "postgres"


class PostgresUnavailable(Exception):
    """The machine cannot run a throwaway server (no binaries, no user, start failed)."""


def find_binary(name: str) -> str:
    """``initdb`` or ``pg_ctl`` from PATH or the newest ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(Path(path).parent.parent.name.split(".")[0] or 0),
    )
    if candidates:
        return candidates[-1]
    raise PostgresUnavailable(
        f"{name} not found on PATH nor in /usr/lib/postgresql/*/bin "
        "(install PostgreSQL: apt-get install -y postgresql)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root and runuser is missing")
    try:
        import pwd

        pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root; no {_SYSTEM_USER!r} user") from None
    return ["runuser", "-u", _SYSTEM_USER, "--", *argv]


class PostgresServer:
    """One PostgreSQL server in its own temporary directory, on a free loopback port."""

    def __init__(self) -> None:
        self.initdb = find_binary("initdb")
        self.pg_ctl = find_binary("pg_ctl")
        self.root = Path(tempfile.mkdtemp(prefix="guardrail-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.running = False
        if os.geteuid() == 0:
            shutil.chown(self.root, user=_SYSTEM_USER)
        os.chmod(self.root, 0o700)
        self._run(
            [
                self.initdb,
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            "initdb",
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def socket_url(self) -> str:
        """The same server through its Unix-domain socket (in the server's directory)."""
        return f"postgresql://postgres@/postgres?host={self.root}&port={self.port}"

    def _run(self, argv: list[str], what: str, timeout: float = 120) -> None:
        try:
            done = subprocess.run(
                _as_server_user(argv), capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"{what} failed: {exc}") from None
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgresUnavailable(
                f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}\n{log}"
            )

    def start(self) -> None:
        """Start on a fresh free port (retried: another process may take the port first)."""
        last: PostgresUnavailable | None = None
        for _ in range(5):
            self.port = free_port()
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                "-c max_connections=200 -c shared_buffers=128MB"
            )
            try:
                self._run(
                    [
                        self.pg_ctl,
                        "-D",
                        str(self.data),
                        "-l",
                        str(self.log),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    "pg_ctl start",
                )
            except PostgresUnavailable as exc:
                last = exc
                continue
            self.running = True
            return
        assert last is not None
        raise last

    def stop(self) -> None:
        if self.running:
            stop = [self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"]
            self._run(stop, "pg_ctl stop")
            self.running = False

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason}")


def start_private_server() -> PostgresServer:
    """A started server of its own, or skip (fail in CI); the caller destroys it."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
        raise
    try:
        server.start()
    except PostgresUnavailable as exc:
        server.destroy()
        _unavailable(str(exc))
        raise
    return server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL server for this test run (superuser ``postgres``, database
    ``postgres``)."""
    external = os.environ.get(URL_ENV_VAR)
    if external:
        yield external
        return
    server = start_private_server()
    try:
        yield server.url
    finally:
        server.destroy()


def create_database(server_url: str) -> str:
    """Create a fresh, uniquely named database on the server; returns its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def with_database(url: str, name: str) -> str:
    """``url`` (TCP or Unix-socket form) naming database ``name`` instead."""
    location, mark, query = url.partition("?")
    base, _, _ = location.rpartition("/")
    return f"{base}/{name}{mark}{query}"


def drop_database(server_url: str, database_url: str) -> None:
    import psycopg

    name = database_url.partition("?")[0].rpartition("/")[2]
    deadline = time.monotonic() + 10
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        while True:
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@pytest.fixture
def postgres_db_url(postgres_url: str) -> Iterator[str]:
    """URL of an empty database of its own for one test, dropped afterwards."""
    url = create_database(postgres_url)
    try:
        yield url
    finally:
        drop_database(postgres_url, url)
