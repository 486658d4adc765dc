import json
from typing import ClassVar

import pytest

from sutra_deploy.core.errors import SmokeFailed, SutraError
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s.environments import environment
from sutra_deploy.k8s.manifests import namespace_of, render
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.kubectl import Kubectl
from sutra_deploy.verify.smoke import (
    Check,
    SmokeReport,
    parse_base_urls,
    run_smoke,
    service_ports,
    smoke_through_port_forwards,
)

from ...json_servers import JsonHandler, serving
from ...standin.recording import REAL_KUBECTL

STACK = load_stack(PROJECT_DIR / "stack.toml")


def test_base_urls_are_checked():
    names = STACK.service_names
    assert parse_base_urls(["sutra-api=http://localhost:18000"], names) == {
        "sutra-api": "http://localhost:18000"
    }
    with pytest.raises(SutraError, match="expected SERVICE=URL"):
        parse_base_urls(["http://localhost:8000"], names)
    with pytest.raises(SutraError, match="unknown service 'api'"):
        parse_base_urls(["api=http://localhost:8000"], names)


def test_report_json_and_failure_message():
    report = SmokeReport((Check("sutra-api", True, 0.1, "ok"), Check("end-to-end", False, 3.0, "no id")))
    assert json.loads(json.dumps(report.as_json())) == {
        "ok": False,
        "checks": [
            {"name": "sutra-api", "ok": True, "seconds": 0.1, "detail": "ok"},
            {"name": "end-to-end", "ok": False, "seconds": 3.0, "detail": "no id"},
        ],
    }
    with pytest.raises(SmokeFailed, match="smoke failed: end-to-end: no id"):
        report.raise_if_failed()


class TinyApi(JsonHandler):
    """A real HTTP server speaking the API's contract, with a memory instead of storage."""

    facts: ClassVar[dict[str, str]] = {}

    def do_GET(self):
        self.reply(200, {"status": "ok"}) if self.path == "/health" else self.reply(404, {})

    def do_POST(self):
        body = self.body()
        if self.path == "/learn":
            fact_id = f"id{len(self.facts)}"
            self.facts[fact_id] = body["content"]
            self.reply(201, {"id": fact_id})
        elif self.path == "/query":
            hits = [
                {"id": i, "content": c, "score": 1.0} for i, c in self.facts.items() if body["query"] in c
            ]
            self.reply(200, {"results": hits})


@pytest.fixture
def api_url():
    with serving(TinyApi) as url:
        yield url


def test_smoke_against_a_live_api_and_a_dead_port(api_url):
    api = STACK.service("sutra-api")
    storage = STACK.service("storage-server")
    report = run_smoke(
        [api, storage],
        {"sutra-api": api_url, "storage-server": "tcp://127.0.0.1:1"},
        timeout=0.5,
        journey=STACK.journey,
    )
    checks = {c.name: c for c in report.checks}
    assert checks["sutra-api"].ok and checks["sutra-api"].detail.endswith("/health -> 200")
    assert checks["end-to-end"].ok and "(POST /query on sutra-api)" in checks["end-to-end"].detail
    assert not checks["storage-server"].ok
    assert "tcp 127.0.0.1:1" in checks["storage-server"].detail
    assert not report.ok


def test_service_ports_come_from_the_rendered_services():
    objects = [
        {"kind": "Service", "metadata": {"name": "sutra-client"}, "spec": {"ports": [{"port": 80}]}},
        {"kind": "Deployment", "metadata": {"name": "sutra-client"}, "spec": {}},
    ]
    assert service_ports(objects) == {"sutra-client": 80}


def test_a_dry_smoke_through_port_forwards_prints_one_forward_per_service():
    objects = render(Kubectl(Commands(), str(REAL_KUBECTL)), environment(DEFAULTS["sutra"], "staging"), STACK)
    namespace, ports = namespace_of(objects), service_ports(objects)
    commands = Commands(dry=True)
    kubectl = Kubectl(commands, "kubectl")
    assert smoke_through_port_forwards(kubectl, STACK, objects, namespace, timeout=1) is None
    forwards = [line.split() for line in commands.printed]
    assert [f[:3] for f in forwards] == [["kubectl", "port-forward", f"svc/{s.name}"] for s in STACK.services]
    for forward, service in zip(forwards, STACK.services, strict=True):
        local, remote = forward[3].split(":")
        assert int(remote) == ports[service.name] and int(local) > 0
        assert forward[4:] == ["--namespace", namespace, "--address", "127.0.0.1"]
