"""`inv cleanup` on real engine objects: what a killed run left is found by its owner labels and
removed; what a live process owns, and a stack without owner labels, is never touched."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from sutra_deploy.local.leftovers import owner_labels
from sutra_deploy.tools.files import OWNER_FILE

from .conftest import STACK, docker, inv, own_project


def ended_pid() -> int:
    """The pid of a process that has already ended: an owner that is gone."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


def project_containers(project: str) -> list[str]:
    return docker(
        "ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={project}"
    ).stdout.split()


def test_a_killed_test_runs_stack_is_named_and_inv_cleanup_takes_only_it(built_v2, local_stack):
    """A test run's stack carries its owner's pid (sutra.owner_pid): once that process is gone
    (here one that has already ended), `inv cleanup` names the project and removes it, and
    leaves the stack this live test session owns running."""
    pid = ended_pid()
    orphan = {**own_project(local_stack, "orphan"), "INVOKE_SUTRA_OWNER_PID": str(pid)}
    name = orphan["INVOKE_SUTRA_PROJECT"]
    try:
        up = inv("local-up", **orphan)
        assert up.returncode == 0, up.stderr[-3000:]
        dry = inv("--dry", "cleanup")
        assert dry.returncode == 0, dry.stderr
        assert f"docker rm --force {name}-" in dry.stdout and len(project_containers(name)) == len(
            STACK.services
        )
        removed = inv("cleanup", "--json")
        assert removed.returncode == 0, removed.stderr
        found = json.loads(removed.stdout)["leftovers"]
        ours = [f for f in found if f["project"] == name]
        assert {f["kind"] for f in ours} >= {"container", "network", "volume"}
        assert all(f"its test run (pid {pid}) is gone" == f["why"] for f in ours)
        assert local_stack["INVOKE_SUTRA_PROJECT"] not in {f["project"] for f in found}
        assert project_containers(name) == []
        assert len(project_containers(local_stack["INVOKE_SUTRA_PROJECT"])) == len(STACK.services)
    finally:
        inv("local-down", "--volumes", **orphan)


def test_a_killed_test_clusters_networks_and_volumes_go_as_one_group(docker_engine):
    """Outside compose, objects sharing an owner-group label (a test cluster's) are one leftover
    once their owner is gone; the same objects owned by this live process stay."""
    gone = owner_labels("test cluster", pid=ended_pid(), group="sutra-test-gone0001")
    live = owner_labels("test cluster", group="sutra-test-live0001")
    made = []
    try:
        for group, labels in (("sutra-test-gone0001", gone), ("sutra-test-live0001", live)):
            flags = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
            docker("network", "create", *flags, f"{group}-default")
            docker("volume", "create", *flags, f"{group}-claim")
            made.append(group)
        result = inv("cleanup", "--json")
        assert result.returncode == 0, result.stderr
        found = {(f["kind"], f["name"]): f for f in json.loads(result.stdout)["leftovers"]}
        assert {key for key, f in found.items() if f["project"].startswith("sutra-test-")} == {
            ("network", "sutra-test-gone0001-default"),
            ("volume", "sutra-test-gone0001-claim"),
        }
        assert found[("network", "sutra-test-gone0001-default")]["why"].startswith("its test cluster (pid ")
        assert "sutra-test-gone0001-default" not in docker("network", "ls", "--format", "{{.Name}}").stdout
        assert "sutra-test-live0001-claim" in docker("volume", "ls", "--format", "{{.Name}}").stdout
    finally:
        for group in made:
            docker("network", "rm", f"{group}-default", check=False)
            docker("volume", "rm", f"{group}-claim", check=False)


def test_a_killed_runs_temporary_folders_go_and_a_live_ones_stay(tmp_path):
    """A throwaway registry's data or unpacked layers, left in the temporary folder by a run
    killed with SIGKILL: named by `--dry`, removed by `inv cleanup`; a live process's stays."""
    temporary = Path(tempfile.gettempdir())
    gone = Path(tempfile.mkdtemp(prefix="sutra-verify-registry-", dir=temporary))
    live = Path(tempfile.mkdtemp(prefix="sutra-verify-pull-", dir=temporary))
    try:
        for folder, pid in ((gone, ended_pid()), (live, os.getpid())):
            (folder / OWNER_FILE).write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
            (folder / "data").mkdir()
            (folder / "data" / "blob").write_bytes(b"layer" * 1000)
        dry = inv("--dry", "cleanup")
        assert dry.returncode == 0, dry.stderr
        assert f"rm -rf -- {gone}" in dry.stdout and gone.exists()
        assert str(live) not in dry.stdout
        removed = inv("cleanup", "--json")
        assert removed.returncode == 0, removed.stderr
        folders = [f for f in json.loads(removed.stdout)["leftovers"] if f["kind"] == "folder"]
        assert [f["name"] for f in folders if f["name"] in (str(gone), str(live))] == [str(gone)]
        assert "is gone" in folders[0]["why"]
        assert not gone.exists() and (live / "data" / "blob").exists()
    finally:
        shutil.rmtree(gone, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)
