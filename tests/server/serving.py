"""Start ``guardrail serve`` as a real process on a free loopback port, with keys made by
``guardrail keys add``; stop it when done."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
AUDIT_SECRET = "hex:" + "5a" * 32


def guardrail_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env["GUARDRAIL_AUDIT_KEY"] = AUDIT_SECRET
    env.update(extra or {})
    return env


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guardrail.cli", *args],
        capture_output=True,
        text=True,
        env=guardrail_env(env),
        cwd=ROOT,
        timeout=120,
    )


def write_config(
    folder: Path,
    *,
    workers: int = 1,
    history: str | None = None,
    pack: Path = ROOT / "rules" / "cn-baseline",
    auth_failures_per_minute: int = 1000,
    max_body_bytes: int = 1024 * 1024,
    store_url: str | None = None,
) -> Path:
    """A config in ``folder``; ``store_url`` puts every store there (e.g. PostgreSQL)."""
    history = history or ("memory:" if workers == 1 else "sqlite:///history.sqlite")
    stores = (
        dict.fromkeys(("sessions", "audit", "keys"), store_url)
        if store_url
        else {
            "sessions": "sqlite:///sessions.sqlite",
            "audit": "sqlite:///audit.sqlite",
            "keys": "sqlite:///keys.sqlite",
        }
    )
    history = store_url or history
    path = folder / "serve.toml"
    path.write_text(
        f"""
[serve]
pack = "{pack}"
bind = "127.0.0.1:0"
workers = {workers}
[stores]
history = "{history}"
sessions = "{stores["sessions"]}"
audit = "{stores["audit"]}"
keys = "{stores["keys"]}"
[limits]
max_body_bytes = {max_body_bytes}
auth_failures_per_minute = {auth_failures_per_minute}
""",
        encoding="utf-8",
    )
    return path


def add_key(config: Path, role: str, name: str) -> str:
    result = run_cli("keys", "add", "--role", role, "--name", name, "--config", str(config))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@dataclass
class Server:
    url: str
    config: Path
    process: subprocess.Popen[str]
    log_path: Path
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def audit_path(self) -> Path:
        return self.config.parent / "audit.sqlite"

    def client(self, key: str | None = None, **options: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **options)  # type: ignore[arg-type]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        text = children.read_text() if children.exists() else ""
        return [int(pid) for pid in text.split()]


@contextmanager
def serve(config: Path, *, startup_s: float = 60.0) -> Iterator[Server]:
    """Run ``guardrail serve --config config`` until the block ends."""
    log_path = config.parent / "server.log"
    log = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "guardrail.cli", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=guardrail_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if match is None:
            process.wait(timeout=10)
            raise RuntimeError(f"server did not start: {line!r}\n{log_path.read_text()}")
        server = Server(f"http://127.0.0.1:{match.group(1)}", config, process, log_path)
        deadline = time.monotonic() + startup_s
        while True:
            try:
                if httpx.get(server.url + "/v1/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server not ready:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        log.close()
