"""The HEALTHCHECK's probe, run for real against a local server: python3 alone, no curl."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sutra_deploy.core.stack import HealthCheck
from sutra_deploy.images.dockerfiles.health import health_probe


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


def run_probe(command: list[str]) -> int:
    return subprocess.run([sys.executable, *command[1:]], capture_output=True, timeout=30).returncode


def test_the_health_probes_work_without_curl():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        assert run_probe(health_probe(HealthCheck("http", "/health"), port, "3s")) == 0
        assert run_probe(health_probe(HealthCheck("http", "/down"), port, "3s")) != 0
        assert run_probe(health_probe(HealthCheck("tcp"), port, "1500ms")) == 0
        assert "timeout=1.5" in health_probe(HealthCheck("tcp"), port, "1500ms")[2]
    finally:
        server.shutdown()
        server.server_close()
    assert run_probe(health_probe(HealthCheck("tcp"), port, "1s")) != 0  # nothing listens now
