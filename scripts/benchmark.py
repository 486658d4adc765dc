#!/usr/bin/env python3
"""Benchmark the build and the local stack. Figures for people, not a test: run it on a
quiet machine.

Verify (--verify): the wall time of `inv verify` with its default load.
Startup (--startup): `inv --list`, and a no-op `inv build` against five plain `docker build`s.
Build: cold and no-change build times, parallel against serial, each image's bytes against
the plan. Local (--local): seconds from `inv local-up` to all healthy, cold (new containers,
empty volume) and warm (containers recreated, data kept), against the plan's fixed
`sleep 10`; the whole stack's idle CPU 30 s after local-up; and each container's peak memory
while the smoke test runs in a loop. Load client (--load-client): verify's finds-only closed
loop against ApacheBench (`ab -k`, apache2-utils) on the same request and stack, in turns.

    .venv/bin/python scripts/benchmark.py [--bases] [--skip-serial] [--v1] [--no-build] [--startup] [--local]
        [--verify] [--load-client [--load-requests N] [--load-concurrency C]] [--peer]
        [--checkout [--checkout-baseline REV]] [--removals] [--json out.json]

Checkout (--checkout [--checkout-baseline REV]): scripts/benchmark-checkout, three services with
a real checkout's dependency sets and one lock: `inv init`, `inv dockerfiles --lock`, build, each
image's size against the plan and its start to a first health answer; with a baseline commit,
that commit's generator and base images on the same checkout, side by side.

Removals (--removals): the benchmark checkout's three dependency sets installed as the generated
Dockerfiles install them, then each removal the deps stage makes, one at a time, with the bytes
it saved.

Peer (--peer): the plan's way against ours, pair by pair, on BuildKit and on the legacy builder:
cold builds (the five build commands `inv --dry build` prints, one after another, against `inv
build --no-cache`, each after `docker builder prune -af`), no-op builds, and `docker compose up
-d` plus the plan's `sleep 10` against `inv local-up`; wall and CPU time, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from sutra_deploy.core.stack import load_stack  # noqa: E402
from sutra_deploy.core.units import mb  # noqa: E402
from sutra_deploy.local.compose_stack import port_env  # noqa: E402


def timed_inv(*args: str, env: dict[str, str] | None = None) -> float:
    return timed([sys.executable, "-m", "invoke", *args], env)


def run_env(env: dict[str, str] | None) -> dict[str, str]:
    """This environment with ``env`` on top, as a user's shell has it: Python keeps its
    byte-code caches (a sandbox that sets PYTHONDONTWRITEBYTECODE compiles every module of
    every run again, a third of a no-op build's CPU)."""
    merged = {**os.environ, **(env or {})}
    merged.pop("PYTHONDONTWRITEBYTECODE", None)
    return merged


def sizes(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "invoke", "sizes", "--json", *args],
        cwd=PROJECT_DIR,
        check=False,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peak_memory_bytes(container_id: str) -> int | None:
    """The kernel's high-water mark for the container (cgroup v1, else v2's memory.peak)."""
    for path in (
        Path(f"/sys/fs/cgroup/memory/docker/{container_id}/memory.max_usage_in_bytes"),
        Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.peak"),
    ):
        if path.exists():
            return int(path.read_text())
    return None


def benchmark_build(options: argparse.Namespace, figures: dict) -> None:
    timings: list[list[str]] = []
    if options.bases:
        figures["base_images_seconds"] = timed_inv("base-images", "--force")
        timings.append(["base images (mmdebstrap, all four)", f"{figures['base_images_seconds']:.1f}"])
    timed_inv("base-images")  # never count making the bases in a build's time
    if not options.skip_serial:
        figures["cold_serial_seconds"] = timed_inv("build", "--no-cache", "--jobs", "1")
        timings.append(["cold build, --jobs 1", f"{figures['cold_serial_seconds']:.1f}"])
    figures["cold_parallel_seconds"] = timed_inv("build", "--no-cache", "--jobs", "2")
    timings.append(["cold build, --jobs 2", f"{figures['cold_parallel_seconds']:.1f}"])
    figures["no_change_seconds"] = timed_inv("build")
    timings.append(["rebuild, nothing changed", f"{figures['no_change_seconds']:.1f}"])
    if options.v1:
        figures["v1_cold_seconds"] = timed_inv("build", "--version", "v1", "--no-cache")
        timings.append(["v1 cold build", f"{figures['v1_cold_seconds']:.1f}"])
    print(tabulate(timings, headers=["Build", "Seconds"], colalign=("left", "right")))

    report = sizes("--baseline", "v1") if options.v1 else sizes()
    figures["sizes"] = report
    rows = [
        [
            s["name"],
            mb(s["old_bytes"]),
            mb(s["size_bytes"]),
            mb(s["target_bytes"]),
            f"{100 * s['size_bytes'] / s['target_bytes']:.0f}%",
            s["status"],
        ]
        for s in report["services"]
    ]
    rows.append(
        [
            "TOTAL",
            mb(report["old_total_bytes"]),
            mb(report["total_bytes"]),
            mb(sum(s["target_bytes"] for s in report["services"])),
            "",
            "",
        ]
    )
    headers = ["Service", f"Old ({report['baseline']})", "New", "Plan target", "of target", "Status"]
    print()
    print(tabulate(rows, headers=headers))
    print(f"\nunique bytes across the images: {mb(report['unique_bytes'])}")


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    subprocess.run(
        argv,
        cwd=PROJECT_DIR,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=run_env(env),
    )
    return time.monotonic() - started


def benchmark_startup(options: argparse.Namespace, figures: dict) -> None:
    """What every `inv` call pays before it works, and a no-op build against the plan's way.

    The plan's way is five plain `docker build`s in a row: the very commands `inv --dry build`
    prints (same Dockerfiles, contexts and base-image build args), so both hit the same cache.
    """
    timed_inv("build")  # warm the cache; not counted
    lists = sorted(timed_inv("--list") for _ in range(5))
    figures["inv_list_median_seconds"] = lists[2]
    dry = subprocess.run(
        [sys.executable, "-m", "invoke", "--dry", "build"],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
        text=True,
    )
    builds = build_commands(dry.stdout)
    plain = min(sum(timed(argv, env) for env, argv in builds) for _ in range(3))
    figures["plain_docker_builds_best_seconds"] = plain
    figures["inv_build_noop_best_seconds"] = min(timed_inv("build") for _ in range(3))
    rows = [
        ["inv --list (median of 5)", f"{lists[2]:.2f}", "<= 0.40"],
        ["inv build, nothing to rebuild (best of 3)", f"{figures['inv_build_noop_best_seconds']:.2f}", ""],
        [f"{len(builds)} plain docker builds in a row (best of 3)", f"{plain:.2f}", ""],
    ]
    print(tabulate(rows, headers=["Startup", "Seconds", "Target"], colalign=("left", "right", "right")))


def timed_cpu(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children): one run of ``argv``."""
    before = os.times()
    wall = timed(argv, env)
    after = os.times()
    return wall, (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def plain_builds(builder: str) -> list[tuple[dict[str, str], list[str]]]:
    """The plan's way: the build commands `inv --dry build` prints, one per image, as they are."""
    dry = subprocess.run(
        [sys.executable, "-m", "invoke", "--dry", "build", "--builder", builder],
        cwd=PROJECT_DIR, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return build_commands(dry.stdout)


def build_commands(printed: str) -> list[tuple[dict[str, str], list[str]]]:
    """The image builds among the lines `inv --dry build` printed, each as (variables, argv):
    the tagged ones (a shared stage `inv` builds first, untagged, is its own way, not the plan's)."""
    commands = [printed_command(line) for line in printed.splitlines() if line.strip()]
    return [
        (env, argv)
        for env, argv in commands
        if (argv[1:2] == ["build"] or argv[1:3] == ["buildx", "build"]) and "--tag" in argv
    ]


def printed_command(line: str) -> tuple[dict[str, str], list[str]]:
    """A line `inv --dry` prints as (the variables it sets, argv): `DOCKER_BUILDKIT=0 docker …`."""
    words = shlex.split(line)
    env = {}
    while words and "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def run_all(commands: list[tuple[dict[str, str], list[str]]]) -> tuple[float, float]:
    walls, cpus = zip(*(timed_cpu(argv, env) for env, argv in commands), strict=True)
    return sum(walls), sum(cpus)


def benchmark_peer(options: argparse.Namespace, figures: dict) -> None:
    """The plan's way and ours, pair by pair, on each builder: a cold build (`docker builder
    prune -af` first, cache mounts included, for both sides) and a no-op build; then the local
    stack: `docker compose up -d` and the plan's fixed `sleep 10` against `inv local-up`."""
    inv = [sys.executable, "-m", "invoke"]
    rows = []
    timed_inv("base-images")  # never count making the bases
    for builder in ("buildkit", "legacy"):
        commands = plain_builds(builder)  # each with the variables it is printed with
        pairs = {}
        for side in ("plain", "inv"):
            subprocess.run(["docker", "builder", "prune", "-af"], check=True, capture_output=True)
            if side == "plain":
                # --no-cache as inv's side has it: the prune empties BuildKit's cache, not the
                # legacy builder's, which keeps its steps as images.
                pairs[side] = run_all([(env, [*argv[:-1], "--no-cache", argv[-1]]) for env, argv in commands])
            else:
                pairs[side] = timed_cpu([*inv, "build", "--builder", builder, "--no-cache"])
        rows.append([f"cold build, {builder}", *_pair(pairs)])
        figures[f"peer_cold_{builder}"] = pairs
        timed_cpu([*inv, "build", "--builder", builder])  # both sides' caches warm and recorded
        noop = {"plain": min(run_all(commands) for _ in range(3))}
        noop["inv"] = min(timed_cpu([*inv, "build", "--builder", builder]) for _ in range(3))
        rows.append([f"no-op build, {builder} (best of 3)", *_pair(noop)])
        figures[f"peer_noop_{builder}"] = noop
    # What any `inv` run pays before it works: Python, Invoke, and the Docker SDK with requests.
    floor = min(timed_cpu([sys.executable, "-c", "import invoke.main, docker"]) for _ in range(5))
    rows.append(
        [
            "  of which starting Python, Invoke, the Docker SDK (best of 5)",
            "",
            "",
            *map("{:.2f}".format, floor),
            "",
            "",
        ]
    )
    figures["peer_start_floor"] = floor
    stack = load_stack(PROJECT_DIR / "stack.toml")
    env = {"INVOKE_SUTRA_PROJECT": f"sutra-peer-{os.getpid()}"}
    env.update({port_env(s): str(free_port()) for s in stack.services})
    compose = [
        "docker",
        "compose",
        "-f",
        str(PROJECT_DIR / "compose" / "docker-compose.yml"),
        "-p",
        env["INVOKE_SUTRA_PROJECT"],
    ]
    try:
        plan_up = timed([*compose, "up", "-d"], env) + 10.0  # the plan: up, then `sleep 10`, unchecked
        subprocess.run([*compose, "down"], env={**os.environ, **env}, check=True, capture_output=True)
        ours = timed_inv("local-up", env=env)
    finally:
        subprocess.run([*compose, "down", "--volumes"], env={**os.environ, **env}, capture_output=True)
    label = "local stack up (plan: up -d + sleep 10, unchecked)"
    rows.append([label, f"{plan_up:.2f}", "", f"{ours:.2f}", "", f"{plan_up / ours:.1f}x", ""])
    figures["peer_local_up"] = {"plain": plan_up, "inv": ours}
    headers = ["Pair", "plan wall", "plan CPU", "inv wall", "inv CPU", "wall ratio", "CPU ratio"]
    print(
        tabulate(
            rows, headers=headers, colalign=("left", "right", "right", "right", "right", "right", "right")
        )
    )


def _pair(pair: dict[str, tuple[float, float]]) -> list[str]:
    (plan_wall, plan_cpu), (inv_wall, inv_cpu) = pair["plain"], pair["inv"]
    return [
        f"{plan_wall:.2f}", f"{plan_cpu:.2f}", f"{inv_wall:.2f}", f"{inv_cpu:.2f}",
        f"{plan_wall / inv_wall:.2f}x", f"{plan_cpu / inv_cpu:.2f}x" if inv_cpu else "-",
    ]  # fmt: skip


BENCHMARK_CHECKOUT = PROJECT_DIR / "scripts" / "benchmark-checkout"


def checkout_stack_file(tree: Path, root: Path, prefix: str, bases_prefix: str | None) -> Path:
    """The checkout described by this tree's `inv init`, its images named ``prefix…`` so the
    reference's are never overwritten. For an older tree (``bases_prefix``), only the keys its
    parser knows, and its own base images under other local names, so both sides' bases stay."""
    stack_file = root / "stack.toml"
    subprocess.run(
        [sys.executable, "-m", "invoke", "init", "--root", str(root), "--write", str(stack_file)],
        cwd=PROJECT_DIR, check=True, capture_output=True,
    )  # fmt: skip
    text = stack_file.read_text().replace('image = "sutra-', f'image = "{prefix}')
    if bases_prefix is not None:
        services = (
            text.split("\n[journey", 1)[0].split("\n# The end-to-end", 1)[0].split("\n[base_images", 1)[0]
        )
        kept = [
            line
            for line in services.splitlines()
            if line.split(" =")[0] not in ("root", "reads", "environment")
        ]
        old = (tree / "stack.toml").read_text()
        bases = old[old.index("[base_images.") :].replace('local = "sutra-base/', f'local = "{bases_prefix}')
        text = "\n".join(kept) + "\n\n" + bases
    stack_file.write_text(text)
    return stack_file


def seconds_to_healthy(ref: str, port: int, path: str, timeout: float = 60.0) -> float:
    """From `docker run` to the first answer of the health route, polled every 50 ms."""
    import requests

    started = time.monotonic()
    cid = subprocess.run(
        ["docker", "run", "-d", "-p", f"127.0.0.1::{port}", ref], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        mapped = subprocess.run(
            ["docker", "port", cid, str(port)], check=True, capture_output=True, text=True
        )
        url = f"http://127.0.0.1:{mapped.stdout.splitlines()[0].rsplit(':', 1)[1]}{path}"
        while time.monotonic() - started < timeout:
            try:
                if requests.get(url, timeout=1).ok:
                    return time.monotonic() - started
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{ref} did not answer {path} within {timeout:.0f} s")
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def benchmark_checkout(options: argparse.Namespace, figures: dict) -> None:
    """The benchmark checkout's three images as `inv dockerfiles --lock` writes them: built,
    sized (each, and unique bytes across them), run to their first health answer; with
    --checkout-baseline REV, the same with that commit's generator and base images beside them."""
    import tempfile

    from sutra_deploy.core.stack import load_stack as load

    sides: list[tuple[str, Path, str, str | None]] = [("now", PROJECT_DIR, "sutra-bench-", None)]
    scratch = Path(tempfile.mkdtemp(prefix="sutra-bench-"))
    if options.checkout_baseline:
        tree = scratch / "baseline-tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), options.checkout_baseline],
            cwd=PROJECT_DIR, check=True, capture_output=True,
        )  # fmt: skip
        sides.insert(0, (options.checkout_baseline, tree, "sutra-bench-base-", "sutra-base-baseline/"))
    results: dict[str, dict] = {}
    try:
        for label, tree, prefix, bases_prefix in sides:
            root = scratch / f"checkout-{prefix}"
            shutil.copytree(BENCHMARK_CHECKOUT, root)
            stack_file = checkout_stack_file(tree, root, prefix, bases_prefix)
            env = {**os.environ, "INVOKE_SUTRA_STACK_FILE": str(stack_file)}

            def inv(*args: str, tree: Path = tree, env: dict = env) -> subprocess.CompletedProcess:
                return subprocess.run(
                    [sys.executable, "-m", "invoke", *args], cwd=tree, env=env, check=True,
                    capture_output=True, text=True,
                )  # fmt: skip

            lock = () if bases_prefix else ("--lock", "requirements.lock")
            inv("base-images", "--only", "python", "--only", "python-runtime")
            inv("dockerfiles", "--root", str(root), *lock, "--write")
            started = time.monotonic()
            inv("build", "--root", str(root), "--bases", "local")
            built = time.monotonic() - started
            report = json.loads(inv("sizes", "--json").stdout)
            stack = load(stack_file)
            startup = {
                s.name: sorted(
                    seconds_to_healthy(s.ref("v2"), s.port.container, s.health.path or "/") for _ in range(3)
                )[1]
                for s in stack.services
            }
            results[label] = {"sizes": report, "build_seconds": built, "startup_seconds": startup}
            print(f"[checkout] {label}: built in {built:.1f} s", file=sys.stderr)
    finally:
        if options.checkout_baseline:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(scratch / "baseline-tree")], cwd=PROJECT_DIR
            )
        shutil.rmtree(scratch, ignore_errors=True)
    figures["checkout"] = results
    labels = list(results)
    rows = []
    for service in results[labels[-1]]["sizes"]["services"]:
        name = service["name"]
        row = [name, mb(service["target_bytes"]), mb(service["limit_bytes"])]
        for label in labels:
            mine = next(s for s in results[label]["sizes"]["services"] if s["name"] == name)
            row += [mb(mine["size_bytes"]), f"{results[label]['startup_seconds'][name]:.2f}"]
        if len(labels) == 2:
            old, new = (next(s for s in results[x]["sizes"]["services"] if s["name"] == name) for x in labels)
            row.append(f"{100 * (1 - new['size_bytes'] / old['size_bytes']):.0f}%")
        rows.append(row)
    totals = ["unique bytes", "", ""]
    for label in labels:
        totals += [mb(results[label]["sizes"]["unique_bytes"]), ""]
    if len(labels) == 2:
        old, new = (results[x]["sizes"]["unique_bytes"] for x in labels)
        totals.append(f"{100 * (1 - new / old):.0f}%")
    rows.append(totals)
    headers = ["Benchmark checkout", "target", "limit"]
    for label in labels:
        headers += [f"{label} size", f"{label} start s"]
    if len(labels) == 2:
        headers.append("smaller by")
    print(tabulate(rows, headers=headers))


def benchmark_verify(options: argparse.Namespace, figures: dict) -> None:
    """`inv verify`'s own wall time, with its default load, and what it measured."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "verify", "--json"], cwd=PROJECT_DIR, capture_output=True, text=True
    )
    figures["verify_seconds"] = time.monotonic() - started
    report = (
        json.loads(result.stdout) if result.stdout.strip().startswith("{") else {"ok": False, "metrics": []}
    )
    figures["verify"] = report
    rows = [
        [
            "inv verify (default load), wall time",
            f"{figures['verify_seconds']:.1f}",
            "ok" if report["ok"] else "FAILED",
        ]
    ]
    print(tabulate(rows, headers=["Verify", "Seconds", "Result"], colalign=("left", "right", "left")))


def cpu_seconds(project: str) -> dict[str, float]:
    """Each of the project's containers' CPU time so far (the engine's cgroup counter)."""
    import docker

    client = docker.from_env()
    used = {}
    for container in client.containers.list(filters={"label": f"com.docker.compose.project={project}"}):
        stats = container.stats(stream=False)
        used[container.labels["com.docker.compose.service"]] = (
            stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
        )
    return used


def idle_cpu(project: str, *, settle: float = 30.0, window: float = 20.0) -> dict[str, float]:
    """Per container, the share of one core used while nothing calls the stack: ``settle``
    seconds after local-up returned, over ``window`` seconds."""
    time.sleep(settle)  # a benchmark's fixed wait: the figure is of the stack left alone
    before, started = cpu_seconds(project), time.monotonic()
    time.sleep(window)
    after, elapsed = cpu_seconds(project), time.monotonic() - started
    return {name: (after[name] - before.get(name, 0.0)) / elapsed for name in sorted(after)}


def benchmark_local(options: argparse.Namespace, figures: dict) -> None:
    stack = load_stack(PROJECT_DIR / "stack.toml")
    # The benchmark's own project on free ports: the user's stack and volume are not touched.
    env = {"INVOKE_SUTRA_PROJECT": f"sutra-bench-{os.getpid()}"}
    env.update({port_env(s): str(free_port()) for s in stack.services})
    rounds = options.smoke_rounds
    try:
        figures["local_up_cold_seconds"] = timed_inv("local-up", env=env)
        timed_inv("local-down", env=env)  # containers go, the volume stays
        figures["local_up_warm_seconds"] = timed_inv("local-up", env=env)
        figures["idle_cpu_share_of_one_core"] = idle_cpu(env["INVOKE_SUTRA_PROJECT"])
        started = time.monotonic()
        for _ in range(rounds):
            timed_inv("smoke", env=env)
        figures["smoke_seconds_per_round"] = (time.monotonic() - started) / rounds
        listing = subprocess.run(
            [
                "docker",
                "ps",
                "--no-trunc",
                "--filter",
                f"label=com.docker.compose.project={env['INVOKE_SUTRA_PROJECT']}",
                "--format",
                '{{.ID}} {{.Label "com.docker.compose.service"}}',
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        figures["peak_memory_bytes"] = {
            name: peak_memory_bytes(cid) for cid, name in (line.split() for line in listing.splitlines())
        }
    finally:
        timed_inv("local-down", "--volumes", env=env)
    rows = [
        ["local-up, cold (new containers, empty volume)", f"{figures['local_up_cold_seconds']:.1f}"],
        ["local-up, warm (containers recreated, data kept)", f"{figures['local_up_warm_seconds']:.1f}"],
        ["the plan's fixed wait (sleep, unchecked)", "10-15"],
        [
            f"inv smoke, mean of {rounds} (process start included)",
            f"{figures['smoke_seconds_per_round']:.2f}",
        ],
    ]
    print(tabulate(rows, headers=["Local stack", "Seconds"], colalign=("left", "right")))
    idle = figures["idle_cpu_share_of_one_core"]
    print()
    print(
        tabulate(
            [[name, f"{share * 100:.1f} %"] for name, share in idle.items()]
            + [["whole stack (target <= 5 %)", f"{sum(idle.values()) * 100:.1f} %"]],
            headers=["Idle, 30 s after local-up, over 20 s", "CPU (one core)"],
            colalign=("left", "right"),
        )
    )
    memory = [
        [name, mb(peak) if peak else "n/a"] for name, peak in sorted(figures["peak_memory_bytes"].items())
    ]
    print()
    print(tabulate(memory, headers=["Container", "Peak memory"], colalign=("left", "right")))


def ab_percentiles(url: str, method: str, body, *, requests: int, concurrency: int) -> dict[int, float]:
    """ApacheBench, keep-alive (`ab -k`), on the same request: its percentiles in milliseconds."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "percentiles.csv"
        argv = ["ab", "-q", "-k", "-c", str(concurrency), "-n", str(requests), "-e", str(csv)]
        if method == "POST":
            payload = Path(folder) / "body.json"
            payload.write_text(json.dumps(body))
            argv += ["-p", str(payload), "-T", "application/json"]
        subprocess.run([*argv, url], check=True, capture_output=True, text=True)
        rows = [line.split(",") for line in csv.read_text().splitlines()[1:]]
        return {int(float(p)): float(ms) for p, ms in rows}


def benchmark_removals(options: argparse.Namespace, figures: dict) -> None:
    """What each removal of the deps stage saves, class by class, on the benchmark checkout's
    three dependency sets (each service's pyproject, pinned by the lock): installed as the
    generated Dockerfiles install them (`pip install --target`, in the local python base),
    then the very steps `inv dockerfiles` writes, one at a time, measured after each."""
    import tempfile
    import tomllib

    from sutra_deploy.images.dockerfiles.render import SITE, compile_step, prune_steps, sourceless_steps

    timed_inv("base-images", "--only", "python")  # never count making the base
    base = load_stack(PROJECT_DIR / "stack.toml").base_image("python").local
    prune = prune_steps(SITE)
    steps = [
        ("console scripts (bin/)", f"rm -rf {SITE}/bin"),
        ("test suites", prune[0]),
        ("type stubs, C sources and headers", prune[1]),
        ("symbols of shared objects (strip)", prune[2]),
        ("byte-code compiled (pip's default keeps the source too)", compile_step(SITE)),
        ("sources of byte-compiled modules (sourceless)", " && ".join(sourceless_steps(SITE))),
    ]  # fmt: skip
    script = [
        f"python3 -m pip install --quiet --no-cache-dir --no-compile --disable-pip-version-check "
        f"--target {SITE} -c /in/requirements.lock -r /in/requirements.txt",
        f"echo installed $(du -sb {SITE} | cut -f1)",
    ]
    for index, (_, command) in enumerate(steps):
        script += [command, f"echo {index} $(du -sb {SITE} | cut -f1)"]
    rows, results = [], {}
    for package in sorted((BENCHMARK_CHECKOUT / "packages").iterdir()):
        project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
        with tempfile.TemporaryDirectory(prefix="sutra-removals-") as folder:
            Path(folder, "requirements.txt").write_text("\n".join(project["dependencies"]) + "\n")
            shutil.copy(BENCHMARK_CHECKOUT / "requirements.lock", Path(folder, "requirements.lock"))
            out = subprocess.run(
                ["docker", "run", "--rm", "-v", f"{folder}:/in:ro", "--entrypoint", "sh", base,
                 "-ec", " && ".join(script)],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
        measured = dict(
            line.split() for line in out.splitlines() if line.split()[:1] and line.split()[-1].isdigit()
        )
        before = int(measured["installed"])
        results[project["name"]] = {"installed": before}
        rows.append([project["name"], "installed by pip --target --no-compile", mb(before), ""])
        for index, (label, _) in enumerate(steps):
            after = int(measured[str(index)])
            results[project["name"]][label] = after
            rows.append(["", label, mb(after), f"{(after - before) / 1e6:+.1f} MB"])
            before = after
    figures["removals"] = results
    print(
        tabulate(
            rows, headers=["Service", "After", "Bytes", "Change"], colalign=("left", "left", "right", "right")
        )
    )


def benchmark_load_client(options: argparse.Namespace, figures: dict) -> None:
    """verify's finds-only closed loop against ApacheBench, on one running stack, in turns."""
    from sutra_deploy.local.compose_stack import local_urls
    from sutra_deploy.tools.http import Http
    from sutra_deploy.verify.closed_loop import closed_loop
    from sutra_deploy.verify.journey import learn, new_marker

    stack = load_stack(PROJECT_DIR / "stack.toml")
    env = {"INVOKE_SUTRA_PROJECT": f"sutra-bench-{os.getpid()}"}
    env.update({port_env(s): str(free_port()) for s in stack.services})
    requests, concurrency, rounds = options.load_requests, options.load_concurrency, 3
    rows = []
    try:
        timed_inv("local-up", env=env)
        urls = local_urls(stack, env)
        fact = learn(Http(), stack.journey, urls, new_marker())
        method, path, body = stack.journey.find.render({"marker": fact.marker, "id": fact.id})
        url = urls[stack.journey.find.service].rstrip("/") + path
        closed_loop(url, method, body, requests=50, concurrency=concurrency)  # warm both sides up
        for round_ in range(1, rounds + 1):
            ours = closed_loop(url, method, body, requests=requests, concurrency=concurrency)
            theirs = ab_percentiles(url, method, body, requests=requests, concurrency=concurrency)
            mine = {p: ours.percentile(p) * 1000 for p in (50, 95)}
            rows.append([round_, f"{mine[50]:.1f}", f"{theirs[50]:.1f}", f"{mine[50] / theirs[50]:.2f}",
                         f"{mine[95]:.1f}", f"{theirs[95]:.1f}", f"{mine[95] / theirs[95]:.2f}"])  # fmt: skip
            figures.setdefault("load_client", []).append(
                {"ours_ms": mine, "ab_ms": {50: theirs[50], 95: theirs[95]}}
            )
    finally:
        timed_inv("local-down", "--volumes", env=env)
    print(f"finds only: {requests} x {method} {path}, {concurrency} connections kept alive, in turns")
    print(
        tabulate(rows, headers=["Round", "p50 ours", "p50 ab -k", "ratio", "p95 ours", "p95 ab -k", "ratio"])
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", action="store_true", help="also time remaking the base images")
    parser.add_argument("--skip-serial", action="store_true", help="skip the --jobs 1 cold build")
    parser.add_argument("--v1", action="store_true", help="also build v1 and compare against it")
    parser.add_argument("--no-build", action="store_true", help="skip the build benchmark")
    parser.add_argument("--local", action="store_true", help="also benchmark the local compose stack")
    parser.add_argument("--smoke-rounds", type=int, default=20, help="smoke runs while memory is watched")
    parser.add_argument("--startup", action="store_true", help="also time inv's startup and a no-op build")
    parser.add_argument("--verify", action="store_true", help="also time inv verify --env local")
    parser.add_argument(
        "--peer", action="store_true", help="the plan's way and ours, pair by pair, both builders"
    )
    parser.add_argument("--load-client", action="store_true", help="verify's finds-only client against ab -k")
    parser.add_argument("--load-requests", type=int, default=1000, help="finds per round of --load-client")
    parser.add_argument("--load-concurrency", type=int, default=16, help="connections of --load-client")
    parser.add_argument(
        "--checkout", action="store_true", help="the benchmark checkout's images: sizes and startup"
    )
    parser.add_argument(
        "--checkout-baseline",
        metavar="REV",
        help="with --checkout: also this commit's generator, side by side",
    )
    parser.add_argument(
        "--removals", action="store_true", help="what each removal of the deps stage saves, class by class"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    options = parser.parse_args()
    figures: dict = {}
    if not options.no_build:
        benchmark_build(options, figures)
    chosen = (
        (options.startup, benchmark_startup),
        (options.local, benchmark_local),
        (options.verify, benchmark_verify),
        (options.load_client, benchmark_load_client),
        (options.peer, benchmark_peer),
        (options.checkout, benchmark_checkout),
        (options.removals, benchmark_removals),
    )
    for wanted, benchmark in chosen:
        if wanted:
            print()
            benchmark(options, figures)
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
