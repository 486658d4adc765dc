"""Faults the tools must survive, caused on purpose on real containers (loopback only).

- a registry connection cut in the middle of a blob upload: push fails naming the image,
  and the next push completes;
- storage-server killed with SIGKILL during a stream of learns: every acknowledged fact is
  still there after the restart;
- a service that dies during `local-up`: named at once, with its last log lines.

Each test owns what it starts (compose projects with their volumes, a registry, a relay, the
tags a push made) and tears it down; every wait has a deadline and every loop a bound.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
import yaml

from sutra_deploy.local.compose_stack import port_env
from sutra_deploy.local.readiness import NotReady, probe
from sutra_deploy.tools.http import Http
from sutra_deploy.tools.registry import RegistryClient
from sutra_deploy.tools.waiting import wait_until

from .conftest import STACK, docker, inv, own_project, remove_tags_of
from .relay import CuttingRelay
from .test_local_stack import api_url, found

# --- the registry connection cut during a push -----------------------------------------------

# Below the client image's one big layer (busybox, about 1 MB gzipped), above everything the
# engine sends before it: ping, blob checks, the upload's POST and the PATCH's headers.
CUT_AFTER_BYTES = 64 * 1024
# The engine makes 5 attempts per layer, 5, 10, 15 and 20 seconds apart: about 50 s.
PUSH_SECONDS = 300


def report(text: str) -> None:
    """Figures for whoever runs the tests (`pytest -s` shows them; a failure's output has them)."""
    sys.stderr.write(f"[faults] {text}\n")


RELEASE = "fault-1"  # a release of the test's own: the same name on the retry


@pytest.mark.timeout(2 * PUSH_SECONDS + 120)
def test_a_push_cut_mid_layer_fails_naming_the_image_and_the_next_push_completes(built_v2, registry):
    address, _ = registry
    host, _, port = address.partition(":")
    with CuttingRelay((host, int(port)), cut_after=CUT_AFTER_BYTES) as relay:
        target = f"{relay.address}/sutra-ai"
        try:
            started = time.monotonic()
            push = ("push", "--registry", target, "--service", "sutra-client", "--tag", RELEASE)
            cut = inv(*push, timeout=PUSH_SECONDS)
            cut_seconds = time.monotonic() - started
            report(
                f"push through a relay cutting at {CUT_AFTER_BYTES} bytes: exit {cut.returncode} after "
                f"{cut_seconds:.1f}s, {relay.connections} connections, {len(relay.cuts)} cut: "
                + ", ".join(
                    f"{c.method} {c.path.split('?')[0]} at {c.bytes_into_request}B" for c in relay.cuts
                )
            )
            assert cut.returncode == 1, cut.stderr
            assert "Traceback" not in cut.stderr
            last = cut.stderr.strip().splitlines()[-1]
            # The release is pushed first; the floating tags only move once it is there.
            assert last.startswith(f"error: pushing {target}/sutra-client:{RELEASE} failed: "), last
            # What got cut is the layer's upload, every attempt of it, partway through.
            assert len(relay.cuts) >= 2, relay.cuts  # the engine retried, and was cut again
            assert all(c.in_blob_upload for c in relay.cuts), relay.cuts
            assert all(c.bytes_into_request > 1024 for c in relay.cuts), relay.cuts
            registry_client = RegistryClient(address)
            assert registry_client.tags("sutra-ai/sutra-client") == []

            relay.cut_after = None  # the network is back
            cuts_before = len(relay.cuts)
            again = inv(*push, timeout=PUSH_SECONDS)
            assert again.returncode == 0, again.stderr
            assert len(relay.cuts) == cuts_before
            digests = dict(line.split()[:2] for line in again.stdout.splitlines()[2:])
            assert set(digests) == {f"{target}/sutra-client:{tag}" for tag in (RELEASE, "v2", "latest")}
            for tag in (RELEASE, "v2", "latest"):
                manifest = registry_client.manifest("sutra-ai/sutra-client", tag)
                assert manifest is not None and manifest.layers
                assert manifest.digest == digests[f"{target}/sutra-client:{tag}"]
        finally:
            remove_tags_of(f"{relay.address}/")  # the registry fixture only cleans its own port


# --- the registry going away while verify pulls ---------------------------------------------

# Inside the first sizable layer a node fetches, past the manifest and the small config blob.
CUT_DOWNLOAD_AFTER_BYTES = 256 * 1024


def verify_projects() -> list[str]:
    listed = docker("ps", "--all", "--format", '{{.Label "com.docker.compose.project"}}').stdout.split()
    return sorted({p for p in listed if p.startswith("sutra-verify-")})


def test_a_registry_gone_mid_pull_stops_verify_with_one_line_and_nothing_left(built_v2, registry):
    """verify pushes through a relay to a real registry, then fetches each image as a node
    would; the relay ends the first layer download partway: one line naming the registry,
    the layer and how much came, exit 2, and verify's own project and tags torn down."""
    address, _ = registry
    host, _, port = address.partition(":")
    before = verify_projects()
    with CuttingRelay(
        (host, int(port)), cut_after=None, cut_blob_downloads_after=CUT_DOWNLOAD_AFTER_BYTES
    ) as relay:
        try:
            result = inv("verify", "--registry", relay.address, "--requests", "60", "--concurrency", "2")
        finally:
            remove_tags_of(f"{relay.address}/")
    report(
        f"verify through a relay cutting downloads at {CUT_DOWNLOAD_AFTER_BYTES} bytes: "
        f"exit {result.returncode}"
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    pulling = f"error: pulling {relay.address}/{STACK.services[0].image}:verify-"
    assert last.startswith(pulling) and f": {relay.address} stopped sending " in last, last
    came = int(re.search(r" after ([\d,]+) bytes ", last).group(1).replace(",", ""))
    assert 0 < came <= CUT_DOWNLOAD_AFTER_BYTES and "the registry went away" in last, last
    [cut] = relay.cuts
    assert cut.in_blob_download, cut
    assert verify_projects() == before  # its project went, as on any failure
    assert not [
        t
        for t in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        if ":verify-" in t
    ]


# --- storage-server killed during a stream of learns -----------------------------------------

MAX_LEARNS = 3000  # the stream's bound; it is stopped well before, once the checks have their facts
STREAM_SECONDS = 180
ACKED_BEFORE_KILL = 40
ACKED_AFTER_RESTART = 20


def container_of(env: dict[str, str], service: str) -> str:
    listed = docker(
        "ps",
        "--all",
        "--quiet",
        "--filter",
        f"label=com.docker.compose.project={env['INVOKE_SUTRA_PROJECT']}",
        "--filter",
        f"label=com.docker.compose.service={service}",
    ).stdout.split()
    assert len(listed) == 1, listed
    return listed[0]


def container_state(container: str) -> dict:
    return json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)


@dataclass
class LearnStream:
    """Learns facts one after another through the API and keeps those acknowledged (201, id)."""

    env: dict[str, str]
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (text, id)
    refused: int = 0  # an error answer or no answer: not acknowledged, so nothing is promised
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acked(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def run(self) -> None:
        url = api_url(self.env) + "/learn"
        run_id = uuid.uuid4().hex[:8]
        deadline = time.monotonic() + STREAM_SECONDS
        with requests.Session() as session:
            for n in range(MAX_LEARNS):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                text = f"durable fact {run_id} {n}: lighthouse {uuid.uuid4().hex} flashes every {n} seconds"
                try:
                    answer = session.post(url, json={"content": text}, timeout=(2, 15))
                    fact_id = answer.json().get("id") if answer.status_code == 201 else None
                except (requests.RequestException, ValueError):
                    fact_id = None
                if fact_id:
                    with self.lock:
                        self.acknowledged.append((text, fact_id))
                else:
                    with self.lock:
                        self.refused += 1
                    self.stop.wait(0.05)  # storage is away: do not spin through the bound


@pytest.fixture
def killable_stack(built_v2, stack_env) -> Iterator[dict[str, str]]:
    env = own_project(stack_env, "kill")
    try:
        up = inv("local-up", "--timeout", "120", timeout=300, **env)
        assert up.returncode == 0, up.stderr[-2000:]
        yield env
    finally:
        inv("local-down", "--volumes", timeout=300, **env)


@pytest.mark.timeout(600)
def test_every_acknowledged_learn_survives_a_sigkill_of_storage(killable_stack):
    env = killable_stack
    storage = container_of(env, "storage-server")
    started_at = container_state(storage)["StartedAt"]
    stream = LearnStream(env)
    streamer = threading.Thread(target=stream.run, daemon=True)
    streamer.start()
    try:
        wait_until(lambda: stream.acked() >= ACKED_BEFORE_KILL, timeout=60, what="the first learns")
        docker("kill", "--signal", "KILL", storage)
        acked_at_kill = stream.acked()

        def after_the_kill() -> dict | None:
            state = container_state(storage)
            return state if state["Status"] != "running" or state["StartedAt"] != started_at else None

        state = wait_until(after_the_kill, timeout=30, interval=0.1, what="storage-server to die")
        # `docker kill` counts as a manual stop, so the restart policy leaves it down: start it.
        restarted_by = "restart policy"
        if state["Status"] == "exited":
            wait_until(lambda: stream.refused > 0, timeout=30, what="a learn refused while storage is down")
            docker("start", storage)
            restarted_by = "docker start"
        # Its health check as local-up asks it (Docker's own runs every 30 s): answering again.
        storage_service = STACK.service("storage-server")
        storage_url = f"tcp://127.0.0.1:{env[port_env(storage_service)]}"

        def answering() -> bool:
            try:
                probe(Http(), storage_service, storage_url)
            except NotReady:
                return False
            return container_state(storage)["Status"] == "running"

        wait_until(answering, timeout=60, interval=0.2, what="storage-server answering again")
        acked_at_restart = stream.acked()
        wait_until(
            lambda: stream.acked() >= acked_at_restart + ACKED_AFTER_RESTART,
            timeout=60,
            what="learns acknowledged after the restart",
        )
    finally:
        stream.stop.set()
        streamer.join(timeout=30)
    assert not streamer.is_alive()
    killed = container_state(storage)
    with stream.lock:
        acknowledged = list(stream.acknowledged)
        refused = stream.refused
    lost = [(text, fact_id) for text, fact_id in acknowledged if not found(env, text, fact_id)]
    report(
        f"SIGKILL of storage-server: {len(acknowledged)} learns acknowledged ({acked_at_kill} by the "
        f"time the kill returned, {len(acknowledged) - acked_at_restart} after the restart), "
        f"{refused} refused while it was down, {len(lost)} acknowledged and lost; brought back by "
        f"{restarted_by} "
        f"(exit code {state['ExitCode']}, now {killed['Status']})"
    )
    assert state["ExitCode"] == 137 or restarted_by == "restart policy"  # it really was SIGKILL
    assert lost == []


# --- a service that dies during local-up ------------------------------------------------------

LOCAL_UP_TIMEOUT = 30


@pytest.mark.timeout(300)
def test_a_service_that_dies_during_local_up_is_named_at_once_with_its_logs(built_v2, stack_env, tmp_path):
    env = own_project(stack_env, "dies")
    marker = f"hybrid gives up {uuid.uuid4().hex}"
    compose = yaml.safe_load((STACK.path.parent / "compose" / "docker-compose.yml").read_text())
    compose["services"]["sutra-hybrid"]["entrypoint"] = [
        "python3",
        "-c",
        f"import sys; print({marker!r}); sys.exit(1)",
    ]
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(compose, sort_keys=False))
    env["INVOKE_SUTRA_COMPOSE_FILE"] = str(broken)
    try:
        started = time.monotonic()
        result = inv("local-up", "--timeout", str(LOCAL_UP_TIMEOUT), timeout=LOCAL_UP_TIMEOUT + 120, **env)
        seconds = time.monotonic() - started
        last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
        report(f"local-up with a dying sutra-hybrid: exit {result.returncode} after {seconds:.1f}s: {last}")
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert last.startswith("error: services not healthy: ")
        # Named by what became of it: its state in the list may be caught between restarts.
        assert (
            "sutra-hybrid keeps restarting (exit code 1, " in last
            or "sutra-hybrid exited (exit code 1)" in last
        )
        assert "[local] last log lines of sutra-hybrid:" in result.stderr
        assert marker in result.stderr  # its own last words, from its logs
        assert seconds < LOCAL_UP_TIMEOUT  # named when it died, not when the wait ran out
    finally:
        inv("local-down", "--volumes", timeout=300, **env)
    project = f"label=com.docker.compose.project={env['INVOKE_SUTRA_PROJECT']}"
    assert docker("ps", "--all", "--quiet", "--filter", project).stdout.split() == []
    assert docker("volume", "ls", "--quiet", "--filter", project).stdout.split() == []


# --- a registry that never answers a pull ---------------------------------------------------


def test_a_pull_no_registry_answers_is_not_tried_again_within_the_hour(tmp_path):
    """`--bases auto` pulls an official base the engine lacks; where no registry answers, each
    try can cost the daemon's timeout on every build. The real engine's failed pull is kept in
    the cache, so the next run (a new memory read from the file) does not ask again."""
    from sutra_deploy.images.pulls import PullMemory
    from sutra_deploy.tools.commands import Commands
    from sutra_deploy.tools.engine import Engine

    asked: list[str] = []

    class Counting(Engine):
        def pull(self, ref: str) -> bool:
            asked.append(ref)
            return super().pull(ref)

    engine = Counting(Commands())
    ref = "127.0.0.1:1/sutra-nothing:1"  # a closed port: no registry answers there
    memory = PullMemory(tmp_path / "failed-pulls.json")
    assert memory.pull(engine, ref) is False and asked == [ref]
    assert memory.held_back_note() == ""  # it was tried
    next_run = PullMemory(tmp_path / "failed-pulls.json")
    assert next_run.pull(engine, ref) is False and asked == [ref]  # held back: not asked again
    assert next_run.held_back_note().startswith(" (a pull failed within the hour; tried again after ")
