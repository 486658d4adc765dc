"""Nothing bad gets through: a table of bad inputs, each run through the real `inv`.

Each must give exactly one line on stderr and exit 2, having changed nothing:
- on disk: every case runs against a temporary copy of stack.toml (INVOKE_SUTRA_STACK_FILE) and
  of the reference source root (SUTRA_ROOT), snapshotted (content, mode, link target) before
  and after;
- in the cluster: kubectl is the recording stand-in, which must have recorded no call that
  changes a cluster (apply, set, rollout undo, …). A recording, not the real control plane:
  "no call was made" is what is asserted, for every row, in a unit test that needs no Docker;
- in Docker: DOCKER_HOST is a unix socket nobody listens on, so anything tried against the
  engine would fail with a different message (the daemon unreachable, a build failed) than the
  bad input's, which each case names.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sutra_deploy.core.source import PROJECT_DIR, REFERENCE_ROOT

from ..standin.recording import recording_cluster
from .test_tasks import assert_one_line_error

STACK_FILE = PROJECT_DIR / "stack.toml"
CHANGES_A_CLUSTER = {"apply", "set", "delete", "create", "patch", "replace", "scale", "edit", "label"}


@dataclass(frozen=True)
class Bad:
    """One bad input: the `inv` arguments, what it says, and how it is set up."""

    id: str
    args: tuple[str, ...]
    says: tuple[str, ...]  # fragments of the one line on stderr
    env: dict[str, str] = field(default_factory=dict)
    stack_edit: tuple[str, str] | None = None  # (old, new) in the stack file's copy
    stack: str | None = None  # "directory", "latin-1": the stack file is not a TOML file
    stdin: str = "devnull"  # "devnull", or "closed": descriptor 0 closed
    config: str | None = None  # an Invoke config file (`inv -f`), for settings that are tables
    root: str | None = None  # "symlink-loop", "escaping-context"
    # `verify --report`: "{workspace}" in args is the case's workspace, and one of "planted-link"
    # (report/verify.json links to a file of the user's), "taken" (report/index.html exists)
    report: str | None = None


SHELL = "reg.example.com;rm -rf /"
REGISTRY = "is not a registry reference"

CASES = [
    # --- image references: flags and settings, every task that takes one ----------------------
    Bad(
        "render-registry-shell",
        ("k8s-render", "--env", "staging", "--registry", SHELL),
        (f"--registry {SHELL!r}", REGISTRY),
    ),
    Bad(
        "render-registry-upper",
        ("k8s-render", "--env", "staging", "--registry", "r.io/Sutra"),
        ("must be lower-case",),
    ),
    Bad(
        "render-registry-scheme",
        ("k8s-render", "--env", "staging", "--registry", "https://r.io/x"),
        (REGISTRY, "scheme"),
    ),
    Bad(
        "render-tag-space",
        ("k8s-render", "--env", "staging", "--tag", "a b"),
        ("--tag 'a b' is not a valid tag",),
    ),
    Bad(
        "render-tag-subshell",
        ("k8s-render", "--env", "staging", "--tag", "$(reboot)"),
        ("--tag '$(reboot)'",),
    ),
    Bad("apply-registry-shell", ("k8s-apply", "--env", "staging", "--registry", SHELL, "--yes"), (REGISTRY,)),
    Bad("apply-tag-dash", ("k8s-apply", "--env", "staging", "--tag", "-v2", "--yes"), ("--tag '-v2'",)),
    Bad(
        "rollback-to-space",
        ("rollback", "--env", "staging", "--to", "a b"),
        ("--to 'a b' is not a valid tag",),
    ),
    Bad(
        "rollback-local-to-bad-tag",
        ("rollback", "--env", "local", "--to", "v9;x"),
        ("--to 'v9;x' is not a valid tag",),
    ),
    Bad("push-registry-shell", ("push", "--registry", SHELL), (REGISTRY,)),
    Bad("push-registry-tag", ("push", "--registry", "localhost:5000/x:v2"), (REGISTRY,)),
    Bad(
        "push-version-unknown",
        ("push", "--registry", "localhost:5000", "--version", "v9"),
        ("unknown version 'v9'",),
    ),
    Bad(
        "deploy-version-unknown", ("deploy", "--env", "staging", "--version", "v9"), ("unknown version 'v9'",)
    ),
    Bad("deploy-local-version", ("deploy", "--env", "local", "--version", "a b"), ("unknown version 'a b'",)),
    Bad(
        "deploy-registry-setting",
        ("deploy", "--env", "staging"),
        ("sutra.environments.staging.registry", REGISTRY),
        env={"INVOKE_SUTRA_ENVIRONMENTS_STAGING_REGISTRY": SHELL},
    ),
    Bad(
        "render-registry-setting",
        ("k8s-render", "--env", "production"),
        ("sutra.environments.production.registry 'Registry.io/Sutra AI'",),
        env={"INVOKE_SUTRA_ENVIRONMENTS_PRODUCTION_REGISTRY": "Registry.io/Sutra AI"},
    ),
    Bad(
        "apply-tag-setting",
        ("k8s-apply", "--env", "staging"),
        ("sutra.environments.staging.tag 'v2;reboot' is not a valid tag",),
        config="sutra:\n  environments:\n    staging:\n      tag: 'v2;reboot'\n",
    ),
    # --- numbers: flags and settings ------------------------------------------------------------
    Bad(
        "smoke-timeout-nan",
        ("smoke", "--timeout", "nan"),
        ("--timeout must be a positive number, got 'nan'",),
    ),
    Bad(
        "smoke-timeout-inf",
        ("smoke", "--timeout", "inf"),
        ("--timeout must be a positive number, got 'inf'",),
    ),
    Bad("smoke-timeout-negative", ("smoke", "--timeout", "-1"), ("--timeout must be a positive number",)),
    Bad("smoke-timeout-huge", ("smoke", "--timeout", "1e308"), ("--timeout must be at most",)),
    Bad("local-up-timeout-zero", ("local-up", "--timeout", "0"), ("--timeout must be a positive number",)),
    Bad("build-jobs-zero", ("build", "--jobs", "0"), ("--jobs must be auto or a positive whole number",)),
    Bad(
        "build-jobs-fraction",
        ("build", "--jobs", "1.5"),
        ("--jobs must be auto or a positive whole number, got '1.5'",),
    ),
    Bad("logs-tail-negative", ("logs", "--tail", "-3"), ("--tail must be a positive whole number",)),
    Bad(
        "jobs-setting-text",
        ("build",),
        ("sutra.jobs must be auto or a positive whole number, got 'abc'",),
        env={"INVOKE_SUTRA_JOBS": "abc"},
    ),
    Bad("smoke-setting-nan", ("smoke",), ("sutra.smoke_timeout",), env={"INVOKE_SUTRA_SMOKE_TIMEOUT": "nan"}),
    # --- quantities, URLs, flags a task would have ignored -------------------------------------
    Bad(
        "memory-two-dots",
        ("verify", "--memory", "sutra-api=1..5Gi"),
        ("--memory 'sutra-api=1..5Gi': '1..5Gi' is no memory quantity; e.g. sutra-api=256Mi",),
    ),
    Bad(
        "cpu-a-dot",
        ("verify", "--cpu", "sutra-api=."),
        ("--cpu 'sutra-api=.': '.' is no cpu quantity; e.g. sutra-api=500m",),
    ),
    Bad(
        "memory-no-unit",
        ("verify", "--memory", "sutra-api=1"),
        ("less than the 6Mi the engine can give a container", "without a unit is bytes"),
    ),
    Bad(
        "base-url-port-range",
        ("smoke", "--base-url", "storage-server=tcp://127.0.0.1:99999"),
        ("--base-url storage-server:", "Port out of range"),
    ),
    Bad(
        "base-url-broken-ipv6",
        ("smoke", "--base-url", "sutra-api=http://[::1"),
        ("--base-url sutra-api:", "Invalid IPv6 URL"),
    ),
    Bad(
        "base-url-password",
        ("smoke", "--base-url", "sutra-api=http://u:secret@localhost:8000"),
        ("a URL with a user or password is not taken",),
    ),
    Bad(
        "rollback-negative-timeout",
        ("rollback", "--env", "staging", "--timeout", "-4"),
        ("--timeout must be a positive number, got '-4'",),
    ),
    Bad(
        "rollback-local-unknown-service",
        ("rollback", "--env", "local", "--service", "nope"),
        ("unknown service 'nope'",),
    ),
    Bad(
        "releases-local-registry",
        ("releases", "--env", "local", "--registry", "localhost:5000"),
        ("`releases --env local` lists the engine's own tags",),
    ),
    Bad("long-value-cut", ("sizes", "--service", "x" * 100_000), ("unknown service", "(100003 characters)")),
    # --- a repeatable flag given nothing: Invoke passes [] as when it is absent (all images) --
    Bad("service-no-value", ("build", "--service"), ("--service needs a value",)),
    Bad("service-no-value-before-flag", ("build", "--service", "--no-cache"), ("--service needs a value",)),
    Bad(
        "service-empty",
        ("push", "--registry", "localhost:5000", "--service", ""),
        ("--service '' names nothing",),
    ),
    Bad("service-commas", ("sizes", "--service=,"), ("--service ',' names nothing",)),
    Bad("extras-no-value", ("dockerfiles", "--extras"), ("--extras needs a value",)),
    # --- settings Invoke reads before any task runs: variables and files ----------------------
    Bad(
        "env-list-not-numbers",
        ("verify",),
        ("INVOKE_SUTRA_VERIFY_CPU_UTILIZATION='50,x'", "whole numbers separated by commas, e.g. 50,80"),
        env={"INVOKE_SUTRA_VERIFY_CPU_UTILIZATION": "50,x"},
    ),
    Bad(
        "env-yes-no",
        ("verify",),
        ("INVOKE_SUTRA_VERIFY_CPU_GATE='maybe'", "expected true or false"),
        env={"INVOKE_SUTRA_VERIFY_CPU_GATE": "maybe"},
    ),
    Bad(
        "config-sutra-a-list",
        ("build",),
        ("invoke.yaml: sutra: expected a table of settings",),
        config="sutra: [1, 2]\n",
    ),
    Bad(
        "config-environment-a-word",
        ("k8s-apply", "--env", "staging"),
        ("invoke.yaml: sutra.environments.staging: expected a table of settings", "got 'oops'"),
        config="sutra:\n  environments:\n    staging: oops\n",
    ),
    Bad(
        "config-environments-null",
        ("deploy", "--env", "staging"),
        ("invoke.yaml: sutra.environments: expected a table of settings (production, staging), got None",),
        config="sutra:\n  environments: null\n",
    ),
    Bad(
        "config-value-a-table",
        ("build",),
        ("invoke.yaml: sutra.jobs: expected a value, like 'auto', got a table",),
        config="sutra:\n  jobs: {a: 1}\n",
    ),
    Bad(
        "config-not-yaml",
        ("build",),
        ("invoke.yaml:2: not YAML Invoke can read",),
        config="sutra: {jobs: [\n",
    ),
    Bad(
        "config-a-list",
        ("build",),
        ("invoke.yaml: expected a table of settings (sutra: …), got a list",),
        config="- a\n",
    ),
    Bad(
        "verify-requests-setting-text",
        ("verify",),
        ("sutra.verify.requests must be a positive whole number, got 'abc'",),
        env={"INVOKE_SUTRA_VERIFY_REQUESTS": "abc"},
    ),
    Bad(
        "verify-startup-setting-nan",
        ("verify", "--env", "staging"),
        ("sutra.verify.startup_seconds",),
        env={"INVOKE_SUTRA_VERIFY_STARTUP_SECONDS": "nan"},
    ),
    Bad(
        "deps-file-limit-setting-text",
        ("fix-deps",),
        ("sutra.deps.max_file_bytes must be a positive whole number",),
        env={"INVOKE_SUTRA_DEPS_MAX_FILE_BYTES": "5MB"},
    ),
    Bad(
        "local-setting-negative",
        ("local-up",),
        ("sutra.local_timeout",),
        env={"INVOKE_SUTRA_LOCAL_TIMEOUT": "-5"},
    ),
    Bad(
        "deploy-smoke-setting-inf",
        ("deploy", "--env", "staging"),
        ("sutra.smoke_timeout must be a positive number, got 'inf'",),
        env={"INVOKE_SUTRA_SMOKE_TIMEOUT": "inf"},
    ),
    Bad(
        "apply-rollout-timeout-negative",
        ("k8s-apply", "--env", "staging"),
        ("sutra.environments.staging.rollout_timeout must be a positive whole number, got '-1'",),
        env={"INVOKE_SUTRA_ENVIRONMENTS_STAGING_ROLLOUT_TIMEOUT": "-1"},
    ),
    Bad(
        "rollback-rollout-timeout-nan",
        ("rollback", "--env", "production", "--yes"),
        ("sutra.environments.production.rollout_timeout",),
        env={"INVOKE_SUTRA_ENVIRONMENTS_PRODUCTION_ROLLOUT_TIMEOUT": "nan"},
    ),
    Bad(
        "cost-rate-zero",
        ("sizes", "--cost"),
        ("sutra.cost.pull_megabytes_per_second must be a number greater than 0",),
        env={"INVOKE_SUTRA_COST_PULL_MEGABYTES_PER_SECOND": "0"},
    ),
    Bad(
        "cost-rate-text",
        ("sizes", "--cost"),
        ("sutra.cost.pulls_per_month",),
        env={"INVOKE_SUTRA_COST_PULLS_PER_MONTH": "lots"},
    ),
    # --- the stack file -------------------------------------------------------------------------
    Bad("stack-is-a-directory", ("sizes",), ("is a directory",), stack="directory"),
    Bad("stack-not-utf8", ("sizes",), ("not UTF-8",), stack="latin-1"),
    Bad("stack-bom-read-past", ("sizes",), ("size_mb.limit", "greater than 0"), stack="bom"),
    Bad(
        "root-from-setting",
        ("build",),
        ("(from sutra.root (INVOKE_SUTRA_ROOT or invoke.yaml)) is not a directory",),
        env={"INVOKE_SUTRA_ROOT": "/nonexistent/root"},
    ),
    Bad(
        "kubeconfig-missing",
        ("k8s-apply", "--env", "staging"),
        ("KUBECONFIG names /nonexistent/kubeconfig, and no such file exists",),
        env={"KUBECONFIG": "/nonexistent/kubeconfig"},
    ),
    Bad(
        "extras-nothing-to-write",
        ("dockerfiles", "--extras", "nosuch"),
        ("--extras nosuch: no Dockerfile is to be written",),
    ),
    Bad(
        "stack-list-for-string",
        ("sizes",),
        ("services.sutra-api.image", "expected a non-empty string"),
        stack_edit=('image = "sutra-api"', 'image = ["sutra-api"]'),
    ),
    Bad(
        "stack-budget-nan",
        ("sizes",),
        ("services.sutra-api.size_mb.limit", "got nan"),
        stack_edit=("limit = 200 }", "limit = nan }"),
    ),
    Bad(
        "stack-budget-huge",
        ("sizes",),
        ("services.sutra-api.size_mb.limit", "at most"),
        stack_edit=("limit = 200 }", "limit = 1e308 }"),
    ),
    Bad(
        "stack-budget-inf",
        ("sizes",),
        ("services.sutra-api.size_mb.old",),
        stack_edit=("old = 703,", "old = inf,"),
    ),
    Bad(
        "stack-service-dotdot",
        ("sizes",),
        ("services.'../x'", "a service name"),
        stack_edit=("[services.sutra-client]", '[services."../x"]'),
    ),
    Bad(
        "stack-service-shell",
        ("sizes",),
        ("services.'a;b'",),
        stack_edit=("[services.sutra-client]", '[services."a;b"]'),
    ),
    Bad(
        "stack-image-space",
        ("sizes",),
        ("services.sutra-api.image", "'Bad Name'"),
        stack_edit=('image = "sutra-api"', 'image = "Bad Name"'),
    ),
    Bad(
        "stack-context-escapes",
        ("sizes",),
        ("services.sutra-control.context", "'../../etc'"),
        stack_edit=('context = "packages/sutra-control"', 'context = "../../etc"'),
    ),
    Bad(
        "stack-dockerfile-absolute",
        ("sizes",),
        ("services.sutra-client.dockerfile", "'/etc/passwd'"),
        stack_edit=('dockerfile = "packages/sutra-client/Dockerfile"', 'dockerfile = "/etc/passwd"'),
    ),
    Bad(
        "stack-base-key-dotdot",
        ("base-images",),
        ("base_images.'../x'",),
        stack_edit=("[base_images.rust]", '[base_images."../x"]'),
    ),
    Bad(
        "stack-base-official",
        ("sizes",),
        ("base_images.debian.official", "the tag"),
        stack_edit=('official = "debian:bookworm-slim"', 'official = "debian:bookworm slim"'),
    ),
    Bad(
        "stack-distill-from-list",
        ("sizes",),
        ("base_images.python-runtime.distill_from",),
        stack_edit=('distill_from = "python"', 'distill_from = ["python"]'),
    ),
    Bad(
        "stack-version-not-a-tag",
        ("sizes",),
        ("stack.versions[1]", "'v2;x'"),
        stack_edit=('versions = ["v1", "v2"]', 'versions = ["v1", "v2;x"]'),
    ),
    Bad(
        "stack-health-path-quote",
        ("sizes",),
        ("services.sutra-api.health.path",),
        stack_edit=('path = "/health"', 'path = "/health\');import os#"'),
    ),
    # --- the source root ------------------------------------------------------------------------
    Bad(
        "root-symlink-loop",
        ("build",),
        ("SUTRA_ROOT", "cannot be resolved", "Symlink loop"),
        root="symlink-loop",
    ),
    Bad(
        "root-context-symlink-out",
        ("build", "--service", "sutra-control"),
        ("sutra-control: context packages/sutra-control resolves to", "outside the source root"),
        root="escaping-context",
    ),
    # --- confirmation ---------------------------------------------------------------------------
    Bad("apply-production-devnull", ("k8s-apply", "--env", "production"), ("needs --yes",)),
    Bad(
        "apply-production-stdin-closed",
        ("k8s-apply", "--env", "production"),
        ("needs --yes",),
        stdin="closed",
    ),
    Bad(
        "deploy-production-stdin-closed",
        ("deploy", "--env", "production", "--tag", "r1"),
        ("needs --yes",),
        stdin="closed",
    ),
    Bad("rollback-production-devnull", ("rollback", "--env", "production"), ("needs --yes",)),
    # --- unknown names, and the daemon away -----------------------------------------------------
    Bad("render-unknown-env", ("k8s-render", "--env", "qa"), ("unknown environment 'qa'",)),
    Bad("deploy-unknown-env", ("deploy", "--env", "qa"), ("unknown environment 'qa'",)),
    Bad(
        "deploy-no-release",
        ("deploy", "--env", "staging"),
        ("no release name:", "name the release with --tag"),
    ),
    Bad(
        "deploy-release-named-like-a-version",
        ("deploy", "--env", "staging", "--tag", "v2"),
        ("is a version",),
    ),
    Bad("push-no-release", ("push", "--registry", "localhost:5000/x"), ("no release name:",)),
    Bad(
        "push-release-latest",
        ("push", "--registry", "localhost:5000/x", "--tag", "latest"),
        ("moves with every",),
    ),
    Bad(
        "rollback-unknown-service",
        ("rollback", "--env", "staging", "--service", "nope"),
        ("unknown service 'nope'",),
    ),
    Bad(
        "push-unknown-service",
        ("push", "--registry", "localhost:5000", "--service", "nope"),
        ("unknown service 'nope'",),
    ),
    Bad("build-unknown-service", ("build", "--service", "nope"), ("unknown service 'nope'",)),
    # --- verify --report: checked before anything is measured (the engine is away here) -------
    Bad(
        "report-link-planted",
        ("verify", "--report", "{workspace}/report"),
        ("already holds verify.json", "never overwrites"),
        report="planted-link",
    ),
    Bad(
        "report-page-taken",
        ("verify", "--report", "{workspace}/report"),
        ("already holds index.html",),
        report="taken",
    ),
    Bad("report-is-a-file", ("verify", "--report", "{workspace}/stack.toml"), ("is a file, not a folder",)),
    Bad(
        "report-link-to-nothing",
        ("verify", "--report", "{workspace}/gone"),
        ("is a link to nothing",),
        report="dangling",
    ),
    Bad("report-unwritable", ("verify", "--report", "/proc/sutra-report"), ("cannot create files in /proc",)),
    Bad("report-empty", ("verify", "--report", " "), ("--report needs a folder",)),
    Bad(
        "render-digests-daemon-away",
        ("k8s-render", "--env", "staging", "--digests"),
        ("cannot reach the Docker daemon",),
    ),
]


def test_the_table_is_big_enough():
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def closed_docker_socket(tmp_path_factory) -> str:
    """A unix socket file nobody listens on: connecting is refused."""
    path = tmp_path_factory.mktemp("docker") / "docker.sock"
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(str(path))
    return f"unix://{path}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_bad_input_is_one_line_exit_2_and_changes_nothing(case: Bad, tmp_path, closed_docker_socket):
    workspace = tmp_path / "workspace"
    root = workspace / "root"
    shutil.copytree(REFERENCE_ROOT, root, symlinks=True)
    stack_file = workspace / "stack.toml"
    write_stack(stack_file, case)
    if case.root == "symlink-loop":
        (workspace / "loop-a").symlink_to(workspace / "loop-b")
        (workspace / "loop-b").symlink_to(workspace / "loop-a")
        root = workspace / "loop-a"
    elif case.root == "escaping-context":
        outside = tmp_path / "outside"
        outside.mkdir()
        shutil.rmtree(root / "packages" / "sutra-control")
        (root / "packages" / "sutra-control").symlink_to(outside)
    if case.report == "planted-link":
        (workspace / "report").mkdir()
        (workspace / "notes.txt").write_text("the user's own file\n")
        (workspace / "report" / "verify.json").symlink_to(workspace / "notes.txt")
    elif case.report == "taken":
        (workspace / "report").mkdir()
        (workspace / "report" / "index.html").write_text("<p>last week's report</p>\n")
    elif case.report == "dangling":
        (workspace / "gone").symlink_to(workspace / "nowhere")
    args = [arg.replace("{workspace}", str(workspace)) for arg in case.args]
    if case.config:
        (workspace / "invoke.yaml").write_text(case.config)
        args = ["-f", str(workspace / "invoke.yaml"), *args]
    cluster = recording_cluster(tmp_path)
    env = {
        **os.environ,
        **cluster.env,
        "INVOKE_SUTRA_STACK_FILE": str(stack_file),
        "SUTRA_ROOT": str(root),
        "DOCKER_HOST": closed_docker_socket,
        **case.env,
    }
    env.pop("SUTRA_DEBUG", None)
    before = snapshot(workspace)

    result = run_inv(args, env, case.stdin)

    assert_one_line_error(result, 2, *case.says)
    assert result.stderr.startswith("error: ")
    assert snapshot(workspace) == before, "the workspace changed on disk"
    changing = [argv for argv in cluster.calls() if changes_a_cluster(argv)]
    assert changing == [], f"kubectl was asked to change the cluster: {changing}"


def write_stack(path: Path, case: Bad) -> None:
    if case.stack == "directory":
        path.mkdir()
        return
    text = STACK_FILE.read_text(encoding="utf-8")
    if case.stack == "bom":  # a byte-order mark and a mistake after it: the mistake is what is named
        path.write_bytes(b"\xef\xbb\xbf" + text.replace("limit = 200 }", "limit = -1 }").encode())
        return
    if case.stack == "latin-1":
        path.write_bytes(text.replace("# The Sutra AI stack", "# The Sütra AI stack").encode("latin-1"))
        return
    if case.stack_edit:
        old, new = case.stack_edit
        assert text.count(old) == 1, f"the edit {old!r} no longer fits stack.toml"
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


def run_inv(args: list[str], env: dict[str, str], stdin: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "invoke", *args]
    if stdin == "closed":  # no descriptor 0 at all, as under some service managers
        argv = ["sh", "-c", 'exec 0<&-; exec "$@"', "sh", *argv]
    return subprocess.run(
        argv,
        cwd=PROJECT_DIR,
        env=env,
        stdin=subprocess.DEVNULL if stdin == "devnull" else None,
        capture_output=True,
        text=True,
        timeout=120,
    )


def changes_a_cluster(argv: list[str]) -> bool:
    return bool(argv) and (
        argv[0] in CHANGES_A_CLUSTER or argv[:2] in (["rollout", "undo"], ["rollout", "restart"])
    )


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` (symlinks not followed): kind, mode and content or target."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                entries[str(path.relative_to(folder))] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                entries[str(path.relative_to(folder))] = ("dir", info.st_mode)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                entries[str(path.relative_to(folder))] = ("file", info.st_mode, digest)
    return entries


def test_the_cluster_check_sees_a_change_when_there_is_one(tmp_path):
    # The control: a good apply, through the same stand-in and the same test of its calls.
    cluster = recording_cluster(tmp_path)
    result = run_inv(["k8s-apply", "--env", "staging"], {**os.environ, **cluster.env}, "devnull")
    assert result.returncode == 0, result.stderr
    assert any(changes_a_cluster(argv) for argv in cluster.calls())
