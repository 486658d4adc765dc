"""The local compose stack on real containers: up, smoke, data kept, push, rollback."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid

import requests
import yaml

from sutra_deploy.local.compose_stack import port_env
from sutra_deploy.tools.registry import RegistryClient
from sutra_deploy.tools.waiting import wait_until

from .conftest import STACK, docker, free_port, inv


def api_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env[port_env(STACK.service(STACK.public_api))]}"


def post(url: str, body: dict) -> dict:
    answer = requests.post(url, json=body, timeout=10)
    answer.raise_for_status()
    return answer.json()


def learn(env: dict[str, str], text: str) -> str:
    return post(api_url(env) + "/learn", {"content": text})["id"]


def found(env: dict[str, str], text: str, fact_id: str) -> bool:
    try:
        results = post(api_url(env) + "/query", {"query": text, "limit": 10})["results"]
    except requests.RequestException:
        return False
    return any(r["id"] == fact_id for r in results)


def compose(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    project = env["INVOKE_SUTRA_PROJECT"]
    file = STACK.path.parent / "compose" / "docker-compose.yml"
    return subprocess.run(
        ["docker", "compose", "-f", str(file), "-p", project, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, **env},
    )


def container_ids(env: dict[str, str]) -> dict[str, str]:
    out = compose(env, "ps", "--format", "json").stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {row["Service"]: row["ID"] for row in rows}


def wait_for_health(env: dict[str, str]) -> None:
    result = inv("local-up", **env)
    assert result.returncode == 0, result.stderr[-2000:]


def test_smoke_json_reports_every_service_and_the_end_to_end_check(local_stack):
    result = inv("smoke", "--json", **local_stack)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    names = [c["name"] for c in report["checks"]]
    assert names == [*STACK.service_names, "end-to-end"]
    assert all(c["ok"] for c in report["checks"])


def test_local_up_twice_changes_nothing(local_stack):
    before = container_ids(local_stack)
    result = inv("local-up", **local_stack)
    assert result.returncode == 0, result.stderr
    assert container_ids(local_stack) == before
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert [(r[0], r[1]) for r in rows] == [(s, "running") for s in STACK.service_names]
    # healthy: Docker's check passed; ready: local-up's own did, before Docker's calm one ran.
    assert all(r[2] in ("healthy", "ready") for r in rows), rows


def test_the_running_stack_checks_its_health_at_a_calm_interval(local_stack):
    """Docker's health checks start a process in each container: every 30 s, not twice a
    second, for as long as the stack runs (local-up polls readiness itself)."""
    for service, container in container_ids(local_stack).items():
        interval = docker("inspect", "-f", "{{.Config.Healthcheck.Interval}}", container).stdout.strip()
        assert interval == "30s", f"{service}: {interval}"


def test_a_fact_survives_a_storage_restart_and_local_down(local_stack):
    text = f"integration fact {uuid.uuid4().hex}: the bridge opens at noon"
    fact_id = learn(local_stack, text)
    assert found(local_stack, text, fact_id)
    assert compose(local_stack, "restart", "storage-server").returncode == 0
    wait_for_health(local_stack)
    wait_until(lambda: found(local_stack, text, fact_id), timeout=30, what="the fact after a restart")
    down = inv("local-down", **local_stack)  # without --volumes: the data stays
    assert down.returncode == 0, down.stderr
    wait_for_health(local_stack)
    wait_until(lambda: found(local_stack, text, fact_id), timeout=30, what="the fact after local-down")


def test_smoke_names_a_stopped_service(local_stack):
    assert compose(local_stack, "stop", "sutra-hybrid").returncode == 0
    try:
        result = inv("smoke", "--json", "--timeout", "3", **local_stack)
        assert result.returncode == 1
        checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
        assert checks["sutra-hybrid"]["ok"] is False
        assert checks["end-to-end"]["ok"] is False
        assert checks["storage-server"]["ok"] is True
        assert "sutra-hybrid:" in result.stderr.strip().splitlines()[-1]
        assert "Traceback" not in result.stderr
    finally:
        wait_for_health(local_stack)


def test_a_taken_host_port_is_one_clear_error(built_v2, stack_env):
    env = {**stack_env, "INVOKE_SUTRA_PROJECT": stack_env["INVOKE_SUTRA_PROJECT"] + "-ports"}
    env.update({port_env(s): str(free_port()) for s in STACK.services})
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env[port_env(STACK.service("sutra-api"))] = str(taken)
        result = inv("local-up", **env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: host port {taken} for sutra-api is already in use; stop whatever holds it "
        f"or choose another with SUTRA_API_PORT=<port>"
    )
    assert container_ids(env) == {}


def test_push_lands_in_a_real_registry_with_matching_digests(built_v2, registry):
    address, _ = registry
    release = "it-push-1"  # the release's own tag, then the floating ones moved to it
    result = inv(
        "push",
        "--registry",
        f"{address}/sutra-ai",
        "--service",
        "sutra-client,storage-server",
        "--tag",
        release,
    )
    assert result.returncode == 0, result.stderr
    digests = dict(line.split()[:2] for line in result.stdout.splitlines()[2:])
    assert set(digests) == {
        f"{address}/sutra-ai/{image}:{tag}"
        for image in ("sutra-storage-server", "sutra-client")
        for tag in (release, "v2", "latest")
    }
    client = RegistryClient(address)
    assert client.catalog() == ["sutra-ai/sutra-client", "sutra-ai/sutra-storage-server"]
    for image in ("sutra-storage-server", "sutra-client"):
        assert client.tags(f"sutra-ai/{image}") == sorted([release, "latest", "v2"])
        for tag in (release, "v2", "latest"):
            # The client asks with the v2/OCI media types, so it sees the digest the push reported.
            manifest = client.manifest(f"sutra-ai/{image}", tag)
            assert manifest.digest == digests[f"{address}/sutra-ai/{image}:{tag}"]
            assert manifest.layers
    assert client.manifest("sutra-ai/sutra-client", "no-such-tag") is None
    assert client.tags("sutra-ai/no-such-image") == []
    # After a push, render can pin each pushed image to the digest the registry returned.
    rendered = inv(
        "k8s-render", "--env", "staging", "--registry", f"{address}/sutra-ai", "--tag", "v2", "--digests"
    )
    assert rendered.returncode == 0, rendered.stderr
    images = {
        c["image"]
        for d in yaml.safe_load_all(rendered.stdout)
        if d and d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert f"{address}/sutra-ai/sutra-client@{digests[f'{address}/sutra-ai/sutra-client:v2']}" in images
    assert f"{address}/sutra-ai/sutra-api:v2" in images  # not pushed here: stays on its tag


def test_a_malformed_registry_is_refused_before_tagging(built_v2):
    result = inv("push", "--registry", "HTTP://Bad Registry/")
    assert result.returncode == 2
    assert "is not a registry reference" in result.stderr
    tags = docker("images", "--format", "{{.Repository}}").stdout
    assert "Bad Registry" not in tags and "HTTP:" not in tags


def image_tag(container: str) -> str:
    return docker("inspect", "-f", "{{.Config.Image}}", container).stdout.strip().rpartition(":")[2]


def running_versions(env: dict[str, str]) -> set[str]:
    return {image_tag(i) for i in container_ids(env).values()}


def test_local_rollback_moves_between_versions_and_keeps_the_data(local_stack, built_v1):
    text = f"rollback fact {uuid.uuid4().hex}: the ferry leaves at six"
    fact_id = learn(local_stack, text)
    back = inv("rollback", "--env", "local", **local_stack)
    assert back.returncode == 0, back.stderr[-2000:]
    assert running_versions(local_stack) == {"v1"}
    assert inv("smoke", **local_stack).returncode == 0
    assert found(local_stack, text, fact_id)
    forward = inv("rollback", "--env", "local", "--to", "v2", **local_stack)
    assert forward.returncode == 0, forward.stderr[-2000:]
    assert running_versions(local_stack) == {"v2"}
    assert inv("smoke", **local_stack).returncode == 0
    assert found(local_stack, text, fact_id)


def test_a_local_rollback_of_one_service_moves_only_that_service(local_stack, built_v1):
    """`--service S`: S goes to the version before the one it runs, every other container stays
    as it is (not even recreated), the data too; `--to` brings S back."""
    api = STACK.public_api
    text = f"one-service rollback fact {uuid.uuid4().hex}: the bridge opens at noon"
    fact_id = learn(local_stack, text)
    before = container_ids(local_stack)
    back = inv("rollback", "--env", "local", "--service", api, **local_stack)
    assert back.returncode == 0, back.stderr[-2000:]
    after = container_ids(local_stack)
    assert {name for name in before if after[name] != before[name]} == {api}
    assert image_tag(after[api]) == "v1"
    assert {image_tag(after[name]) for name in after if name != api} == {"v2"}
    assert inv("smoke", **local_stack).returncode == 0
    assert found(local_stack, text, fact_id)
    forward = inv("rollback", "--env", "local", "--service", api, "--to", "v2", **local_stack)
    assert forward.returncode == 0, forward.stderr[-2000:]
    assert running_versions(local_stack) == {"v2"}
    assert {name for name, cid in container_ids(local_stack).items() if cid != after[name]} == {api}


def test_a_service_that_never_gets_healthy_is_named_with_its_logs(built_v2, stack_env, tmp_path):
    env = {**stack_env, "INVOKE_SUTRA_PROJECT": stack_env["INVOKE_SUTRA_PROJECT"] + "-sick"}
    env.update({port_env(s): str(free_port()) for s in STACK.services})
    # Control listens on another port than its health check asks: it never becomes healthy.
    broken = tmp_path / "docker-compose.yml"
    text = (STACK.path.parent / "compose" / "docker-compose.yml").read_text()
    changed = text.replace("      SUTRA_SERVICES: ", "      CONTROL_PORT: '5999'\n      SUTRA_SERVICES: ", 1)
    assert changed != text, "control's environment is not where the test expects it"
    broken.write_text(changed)
    env["INVOKE_SUTRA_COMPOSE_FILE"] = str(broken)
    try:
        result = inv("local-up", "--timeout", "15", **env)
        assert result.returncode == 1
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: services not healthy: sutra-control (running/")
        assert "not healthy after 15s" in last
        assert "[local] last log lines of sutra-control:" in result.stderr
        assert "5999" in result.stderr  # control's own log line, saying where it listens
    finally:
        inv("local-down", "--volumes", **env)
