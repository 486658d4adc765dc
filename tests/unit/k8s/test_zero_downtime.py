"""The rollout measurement's parts: the floor as the Deployment controller resolves it, the
lowest point kept, requests counted against a real HTTP server that stops answering, records
read back (and refused when stale), and the verify row they make. The whole measurement runs
against the real control plane in tests/cluster/test_deploy.py."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from sutra_deploy.core.errors import SutraError
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s.environments import environment
from sutra_deploy.k8s.manifests import render, stateful_names
from sutra_deploy.k8s.zero_downtime import (
    ANNOTATION,
    RolloutRecord,
    RolloutWatch,
    Target,
    _Availability,
    _Requests,
    max_unavailable,
    read_records,
    targets_for,
)
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.http import Http
from sutra_deploy.tools.kubectl import Kubectl
from sutra_deploy.verify.model import FAIL, NOT_MEASURED, PASS
from sutra_deploy.verify.static import rollout_checks, zero_downtime_metric

from ...standin.recording import REAL_KUBECTL

STACK = load_stack(PROJECT_DIR / "stack.toml")


def deployment(replicas=3, strategy=None, available=None, revision="4", notes=None) -> dict:
    spec = {"replicas": replicas}
    if strategy is not None:
        spec["strategy"] = strategy
    annotations = {"deployment.kubernetes.io/revision": revision, **(notes or {})}
    return {
        "metadata": {"name": "sutra-api", "annotations": annotations},
        "spec": spec,
        "status": {} if available is None else {"availableReplicas": available},
    }


def rolling(unavailable, surge="25%") -> dict:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": unavailable, "maxSurge": surge}}


@pytest.mark.parametrize(
    ("replicas", "strategy", "expected"),
    [
        (4, None, 1),  # Kubernetes' defaults: 25 % rounds down
        (3, None, 0),
        (10, rolling("33%"), 3),
        (3, rolling(0, 1), 0),
        (3, rolling(2), 2),
        (3, rolling(0, 0), 1),  # both 0 is not allowed to stall: one may go
        (3, rolling("0%", "0%"), 1),
        (3, {"type": "Recreate"}, 3),
    ],
)
def test_max_unavailable_resolves_as_the_deployment_controller_does(replicas, strategy, expected):
    assert max_unavailable(deployment(replicas, strategy)) == expected


def test_the_lowest_point_is_the_one_closest_to_the_floor_at_that_moment():
    seen = _Availability()
    for replicas, available in [(2, 2), (3, 2), (3, 3), (2, 1), (5, 5)]:
        seen.sample(deployment(replicas, rolling(0, 1), available))
    # 2 of 3 (margin -1) came first and 1 of 2 (margin -1) later: the first is kept.
    assert (seen.replicas, seen.floor, seen.min_available) == (3, 3, 2)


class Answers(BaseHTTPRequestHandler):
    """The service proxy's side: answers 200 until told to refuse, then 503."""

    refusing = threading.Event()
    seen: ClassVar[list[str]] = []

    def do_GET(self):
        Answers.seen.append(self.path)
        self.send_response(503 if Answers.refusing.is_set() else 200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_requests_are_counted_and_the_first_failure_kept():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    watch = RolloutWatch(
        Kubectl(Commands(), str(REAL_KUBECTL)),
        "sutra-ai",
        [Target("sutra-api", "sutra-api", 8000, "/health")],
    )
    watch.proxy_port = server.server_address[1]
    http = Http()
    try:
        assert [t.deployment for t in watch.reach_each_route(http)] == ["sutra-api"]
        watch._requests = {"sutra-api": _Requests()}
        watch._availability = {"sutra-api": _Availability()}
        watch._availability["sutra-api"].sample(deployment(1, rolling(0, 1), 1))
        sender = threading.Thread(target=watch.send_requests, args=(http, watch.targets))
        watch._started = time.monotonic()
        sender.start()
        time.sleep(0.5)
        Answers.refusing.set()
        time.sleep(0.5)
        watch._stop.set()
        sender.join()
        watch._ended = time.monotonic()
    finally:
        Answers.refusing.clear()
        http.close()
        server.shutdown()
    assert Answers.seen[-1] == "/api/v1/namespaces/sutra-ai/services/sutra-api:8000/proxy/health"
    [record] = watch.records({"sutra-api": 5}, "r7").values()
    assert record.requests > record.failed > 0
    assert record.first_failure.startswith("GET http://127.0.0.1:") and "answered 503" in record.first_failure
    assert (record.revision, record.release, record.floor, record.min_available) == (5, "r7", 1, 1)
    assert not record.ok and record.available_ok
    # A Deployment that did not roll has no record.
    assert watch.records({}, "r7") == {}


def test_a_record_reads_back_and_a_stale_or_mangled_one_says_why():
    record = RolloutRecord(4, "r1", 2, 2, 2, 40, 0, 12.5, "GET /health through it")
    assert RolloutRecord.from_annotation(record.to_annotation()) == record
    found = read_records(
        [
            deployment(notes={ANNOTATION: record.to_annotation()}),
            {
                **deployment(revision="5", notes={ANNOTATION: record.to_annotation()}),
                "metadata": {
                    "name": "sutra-hybrid",
                    "annotations": {
                        "deployment.kubernetes.io/revision": "5",
                        ANNOTATION: record.to_annotation(),
                    },
                },
            },
            {"metadata": {"name": "sutra-control", "annotations": {ANNOTATION: "[1, 2"}}},
            {"metadata": {"name": "sutra-client"}},
        ]
    )
    assert found["sutra-api"] == record
    assert found["sutra-hybrid"] == "measured at revision 4, now at 5 (changed since)"
    assert found["sutra-control"].startswith(f"annotation {ANNOTATION} is not a rollout record")
    assert found["sutra-client"] == "no rollout measured by a deploy"
    with pytest.raises(SutraError):
        RolloutRecord.from_annotation('{"revision": 1}')


@pytest.fixture(scope="module")
def production() -> list[dict]:
    kubectl = Kubectl(Commands(), str(REAL_KUBECTL))
    return render(kubectl, environment(DEFAULTS["sutra"], "production"), STACK)


def live(objects, records) -> list[dict]:
    """The rendered Deployments as the cluster would hold them, with ``records`` on them."""
    found = []
    for o in objects:
        if o.get("kind") != "Deployment":
            continue
        notes = {"deployment.kubernetes.io/revision": "3"}
        if o["metadata"]["name"] in records:
            notes[ANNOTATION] = records[o["metadata"]["name"]].to_annotation()
        found.append({**o, "metadata": {**o["metadata"], "annotations": notes}})
    return found


def test_verify_passes_only_with_a_clean_record_for_every_rolling_deployment(production):
    rolling_names = rollout_checks(production).safe
    clean = RolloutRecord(3, "r1", 2, 2, 2, 30, 0, 9.0, "GET /health through it")
    every = {name: clean for name in rolling_names}

    passed = zero_downtime_metric(production, live(production, every))
    assert (passed.status, passed.value) == (PASS, 0)
    assert passed.unit == f"failed of {30 * len(rolling_names)} requests"
    assert all(name in passed.how for name in rolling_names)
    assert not any(name in passed.how.split(":", 1)[1] for name in stateful_names(production))

    one_short = dict(list(every.items())[1:])
    partial = zero_downtime_metric(production, live(production, one_short))
    assert partial.status == NOT_MEASURED
    assert f"not measured: {rolling_names[0]}: no rollout measured by a deploy" in partial.how

    dropped = RolloutRecord(3, "r1", 2, 2, 1, 30, 0, 9.0, "GET /health through it")
    assert (
        zero_downtime_metric(production, live(production, {**every, rolling_names[0]: dropped})).status
        == FAIL
    )
    failing = RolloutRecord(3, "r1", 2, 2, 2, 30, 2, 9.0, "GET /health", "GET … answered 503 (1.2 s in)")
    failed = zero_downtime_metric(production, live(production, {**every, rolling_names[-1]: failing}))
    assert (failed.status, failed.value) == (FAIL, 2)
    assert "first failure: GET … answered 503 (1.2 s in)" in failed.how

    nothing = zero_downtime_metric(production, live(production, {}))
    assert (nothing.status, nothing.value) == (NOT_MEASURED, None)
    assert nothing.how.startswith("needs requests during a rollout")


def test_targets_leave_out_the_storage_tier_and_new_deployments(production):
    names = [o["metadata"]["name"] for o in production if o.get("kind") == "Deployment"]
    health = {s.name: s.health.path if s.health.protocol == "http" else None for s in STACK.services}
    stateful = stateful_names(production)
    existing = [name for name in names if name != "sutra-client"]  # as if sutra-client were new
    targets = {t.deployment: t for t in targets_for(production, existing, health, stateful)}
    assert set(targets) == set(existing) - stateful
    ports = {
        o["metadata"]["name"]: o["spec"]["ports"][0]["port"] for o in production if o.get("kind") == "Service"
    }
    for name, target in targets.items():
        assert (target.service, target.port, target.path) == (
            name,
            ports[name],
            STACK.service(name).health.path,
        )


def test_a_record_is_one_json_object_on_one_line():
    text = RolloutRecord(
        1, None, 1, 1, 1, 0, 0, 1.0, unmeasured="no HTTP health route to send requests to"
    ).to_annotation()
    assert "\n" not in text and json.loads(text)["unmeasured"].startswith("no HTTP health route")
