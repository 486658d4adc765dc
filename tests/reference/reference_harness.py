"""Harness for the reference services' tests: ports, polling, subprocess services.

Every service runs as a real subprocess on a free 127.0.0.1 port, exactly as its image
runs it, so these tests exercise the same entry points without needing Docker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = REPO_ROOT / "reference" / "packages"
API_DIR = PACKAGES / "sutra-api"
HYBRID_DIR = PACKAGES / "sutra-hybrid"
CONTROL_DIR = PACKAGES / "sutra-control"
STORAGE_DIR = PACKAGES / "sutra-storage"
CLIENT_DIR = PACKAGES / "sutra-client"

STARTUP_TIMEOUT_S = 20.0

# In-process imports (embedding and control unit tests) need the package folders on the path.
for _package_dir in (API_DIR, HYBRID_DIR, CONTROL_DIR):
    if str(_package_dir) not in sys.path:
        sys.path.insert(0, str(_package_dir))


def free_port() -> int:
    """A port nothing listens on right now (the kernel picks it; reuse races are rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    interval: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass; returns the last result."""
    deadline = clock() + timeout
    while True:
        if check():
            return True
        if clock() >= deadline:
            return False
        sleep(interval)


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Launcher:
    """Starts services as subprocesses and stops every one of them at teardown."""

    log_dir: Path
    services: list[Service] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        port: int,
        expect_exit: bool = False,
    ) -> Service:
        log_path = self.log_dir / f"{name}-{len(self.services)}.log"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        with log_path.open("wb") as log:
            process = subprocess.Popen(list(argv), env=full_env, stdout=log, stderr=subprocess.STDOUT)
        service = Service(name=name, port=port, process=process, log_path=log_path)
        self.services.append(service)
        if expect_exit:
            return service
        started = wait_until(lambda: process.poll() is not None or port_open(port), STARTUP_TIMEOUT_S)
        if process.poll() is not None or not started:
            service.stop()
            pytest.fail(f"{name} did not start listening on {port}:\n{service.logs()}")
        return service

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop()

    # -- the reference services ------------------------------------------------------------

    def storage(self, binary: Path, data_dir: Path, port: int | None = None) -> Service:
        port = port or free_port()
        env = {
            "STORAGE_HOST": "127.0.0.1",
            "STORAGE_PORT": str(port),
            "STORAGE_PATH": str(data_dir),
        }
        return self.start("storage-server", [str(binary)], env, port)

    def uvicorn(self, name: str, package_dir: Path, app: str, env: Mapping[str, str]) -> Service:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
        return self.start(name, argv, {**env, "PYTHONPATH": str(package_dir)}, port)

    def hybrid(self, storage_url: str) -> Service:
        return self.uvicorn("sutra-hybrid", HYBRID_DIR, "sutra_hybrid.main:app", {"STORAGE_URL": storage_url})

    def api(self, storage_url: str, hybrid_url: str) -> Service:
        env = {"STORAGE_URL": storage_url, "HYBRID_SERVICE_URL": hybrid_url}
        return self.uvicorn("sutra-api", API_DIR, "sutra_api.main:app", env)

    def control(self, services: str, port: int | None = None, expect_exit: bool = False) -> Service:
        port = port or free_port()
        env = {
            "CONTROL_HOST": "127.0.0.1",
            "CONTROL_PORT": str(port),
            "SUTRA_SERVICES": services,
            "PYTHONPATH": str(CONTROL_DIR),
        }
        argv = [sys.executable, "-m", "sutra_control"]
        return self.start("sutra-control", argv, env, port, expect_exit=expect_exit)
