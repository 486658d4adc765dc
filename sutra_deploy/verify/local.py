"""`inv verify --env local`: the plan's success metrics, measured on this machine.

The v2 stack runs under a compose project of verify's own on free ports (the user's stack
and its volume are never touched), each container capped at the plan's Kubernetes limits as
the production manifests give them. Then: sizes, pulls, startup, a bounded load, the facts
it learned (also after a storage restart), memory and CPU during the load, and health after
it. The project is torn down at the end, also on failure or Ctrl-C. What only a cluster can
show is checked in the manifests (:mod:`.static`) and says `needs a cluster`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import StackUnhealthy, SutraError, TimedOut
from ..core.stack import Stack
from ..core.units import MB, MIB, NANOCPUS_PER_MILLICORE, mb
from ..images.sizes import measure
from ..k8s.capacity import CapacityReport
from ..k8s.quantities import format_bytes_binary
from ..local.compose_stack import LocalStack, port_env
from ..local.leftovers import VERIFY_PROJECT_PREFIX, find_leftovers
from ..tools.engine import ContainerInfo, Engine
from ..tools.files import owned_temporary_folder
from ..tools.ports import free_port
from ..tools.waiting import wait_until
from .closed_loop import TimedRequests, closed_loop
from .limits import ContainerLimits, check_fits, compose_override, container_limits
from .load import LoadResult, missing_facts, run_load
from .model import ESTIMATE, FAIL, INFO, NOT_MEASURED, PASS, Metric, VerifyReport, gate
from .pull import measure_pulls, push_for_pull, throwaway_registry, verify_tag
from .sampler import Sampler, Usage
from .settings import VerifySettings
from .static import needs_a_cluster

log = logging.getLogger("sutra")


@dataclass(frozen=True)
class LocalVerify:
    stack: Stack
    engine: Engine
    compose_file: Path
    settings: VerifySettings
    version: str
    # `sutra.cost.pull_megabytes_per_second`: the all-images pull estimate, as its row says.
    pull_megabytes_per_second: float
    registry: str | None = None
    progress: Callable[[str], None] = log.info


def verify_local(
    run: LocalVerify,
    capacity: CapacityReport,
    manifests: Sequence[dict],
    *,
    memory: Mapping[str, int] | None = None,
    cpu: Mapping[str, int] | None = None,
) -> VerifyReport:
    """Measure everything the plan promises that one machine can show; the report says the rest."""
    stack, engine, settings = run.stack, run.engine, run.settings
    if stack.journey is None:  # the load and the integrity checks are the journey's requests
        raise SutraError(
            f"{stack.path}: declares no [journey]; verify's load needs one (README, The stack file)"
        )
    engine.ensure_available()
    local_images = {s.name: engine.image(s.ref(run.version)) for s in stack.services}
    missing = [s.ref(run.version) for s in stack.services if local_images[s.name] is None]
    if missing:
        raise SutraError(
            f"images not built: {', '.join(missing)}; build them with `inv build --version {run.version}`"
        )
    host_cpus = engine.host_cpus()
    check_fits(memory or {}, cpu or {}, host_memory=engine.host_memory(), host_cpus=host_cpus)
    limits = container_limits(capacity, host_cpus=host_cpus, memory=memory, cpu=cpu)
    report = VerifyReport("local")
    pulled = sizes_and_pulls(run, report)
    startups: list[float] = []  # seconds to the first passing health check, as measured
    with isolated_stack(run, limits) as local:
        started = time.monotonic()
        containers = start(run, local, report, limits, startups)
        if containers is not None:
            measure_running(run, local, containers, limits, report)
        run.progress(f"[verify] measured in {time.monotonic() - started:.0f}s; tearing the project down")
    # What only a cluster shows: the manifests' side of it, and the scale-up estimated from
    # the pulls and startups timed here (never from an estimate or a failed start).
    pulls = [m.value for m in pulled if m.status in (PASS, FAIL) and isinstance(m.value, float)]
    report.add(needs_a_cluster(settings, manifests, pulls=pulls, startups=startups))
    return report


# --- sizes and pulls ------------------------------------------------------------------------


def sizes_and_pulls(run: LocalVerify, report: VerifyReport) -> list[Metric]:
    stack, engine = run.stack, run.engine
    sizes = measure(stack, engine, stack.services, version=run.version)
    for row in sizes.rows:
        budget = row.service.budget
        report.add(
            gate(
                f"image size: {row.service.name}",
                f"<= {mb(budget.limit_bytes)} (target {mb(budget.target_bytes)})",
                round(row.size_bytes / MB, 1),
                "MB",
                row.size_bytes <= budget.limit_bytes,
                "docker image inspect .Size of " + row.image,
            )
        )
        report.sizes.append(
            {
                "service": row.service.name,
                "old_bytes": row.old_bytes,
                "size_bytes": row.size_bytes,
                "target_bytes": budget.target_bytes,
                "limit_bytes": budget.limit_bytes,
            }
        )
    rate = run.pull_megabytes_per_second
    estimate = sizes.unique_bytes / MB / rate
    pull_metrics = []
    with contextlib.ExitStack() as stack_of_contexts:
        registry = run.registry
        how_registry = f"--registry {registry}"
        if registry is None:
            registry = stack_of_contexts.enter_context(throwaway_registry(engine.commands))
            how_registry = f"a throwaway docker-registry on {registry}"
        if registry is None:
            pull_metrics.append(
                Metric(
                    "image pull",
                    f"< {run.settings.pull_seconds:g} s",
                    None,
                    "s",
                    NOT_MEASURED,
                    "no registry: give --registry R, or install Debian's docker-registry",
                )
            )
        else:
            run.progress(f"[verify] pushing under verify's own tag to {registry}")
            pushed = push_for_pull(
                engine, stack.services, registry=registry, version=run.version, tag=verify_tag()
            )
            for pull in measure_pulls(pushed):
                pull_metrics.append(
                    gate(
                        f"image pull: {pull.service}",
                        f"< {run.settings.pull_seconds:g} s",
                        round(pull.seconds, 2),
                        "s",
                        pull.seconds < run.settings.pull_seconds,
                        f"{pull.bytes / MB:.1f} MB fetched (manifest, then every layer blob) and "
                        f"{pull.unpacked_bytes / MB:.1f} MB unpacked from {how_registry}",
                    )
                )
    pull_metrics.append(
        Metric(
            "image pull: all images, at the plan's rate",
            f"< {run.settings.pull_seconds:g} s",
            round(estimate, 1),
            "s",
            ESTIMATE,
            f"{sizes.unique_bytes / MB:.0f} MB unique bytes at {rate:g} MB/s "
            "(sutra.cost.pull_megabytes_per_second)",
        )
    )
    report.add(pull_metrics)
    return pull_metrics


# --- the isolated stack ---------------------------------------------------------------------


@contextlib.contextmanager
def isolated_stack(run: LocalVerify, limits: Mapping[str, ContainerLimits]) -> Iterator[LocalStack]:
    """Verify's own compose project on free ports, capped by ``limits``; always torn down."""
    earlier = find_leftovers(run.engine)
    if earlier.found:
        run.progress(
            f"[verify] left by an earlier run that was killed: {earlier.summary()};"
            " `inv cleanup` removes them"
        )
    project = f"{VERIFY_PROJECT_PREFIX}{secrets.token_hex(3)}"
    ports = {port_env(s): str(free_port()) for s in run.stack.services}
    with owned_temporary_folder("verify") as folder:
        override = Path(folder) / "limits.yml"
        override.write_text(compose_override(limits))
        # Ready when Docker says healthy: the startup figure is its first passing check.
        local = LocalStack(
            run.stack,
            run.engine,
            run.compose_file,
            project,
            env=ports,
            overrides=[override],
            probe_readiness=False,
        )
        try:
            yield local
        finally:
            # The project and its volume are verify's own: both go.
            with contextlib.suppress(SutraError):
                local.down(run.version, volumes=True)


def start(
    run: LocalVerify,
    local: LocalStack,
    report: VerifyReport,
    limits: Mapping[str, ContainerLimits],
    startups: list[float],
) -> dict[str, ContainerInfo] | None:
    """Up under the limits; startup per service (each measured one also in ``startups``, for
    the scale-up estimate); the limits as the engine applied them."""
    run.progress(f"[verify] starting {local.project} under the plan's limits")
    try:
        local.up(run.version, timeout=max(60.0, run.settings.startup_seconds * 3))
        healthy = True
        reason = ""
    except StackUnhealthy as error:
        healthy = False
        reason = str(error)
    containers = containers_of(local)
    for service in run.stack.services:
        info = containers.get(service.name)
        seconds = info.seconds_to_first_healthy_check() if info else None
        how = "container created -> first passing HEALTHCHECK (docker inspect)"
        if info is None or (not healthy and info.health != "healthy"):
            report.add(
                Metric(
                    f"pod startup: {service.name}",
                    f"< {run.settings.startup_seconds:g} s",
                    None,
                    "s",
                    FAIL,
                    f"never healthy under {limits[service.name].describe()}: {reason}",
                )
            )
            continue
        if seconds is not None:
            startups.append(round(seconds, 2))
        report.add(
            gate(
                f"pod startup: {service.name}",
                f"< {run.settings.startup_seconds:g} s",
                None if seconds is None else round(seconds, 2),
                "s",
                None if seconds is None else seconds < run.settings.startup_seconds,
                how,
            )
        )
    report.add(applied_limits(limits, containers))
    if not healthy:
        report.add(oom_and_restarts(run, containers))
        return None
    return containers


def containers_of(local: LocalStack) -> dict[str, ContainerInfo]:
    return {c.service: c for c in local.containers()}


def applied_limits(
    limits: Mapping[str, ContainerLimits], containers: Mapping[str, ContainerInfo]
) -> list[Metric]:
    """What `docker inspect` shows each container capped at, against the manifests."""
    metrics = []
    for name, wanted in limits.items():
        info = containers.get(name)
        if info is None:
            metrics.append(
                Metric(f"limits: {name}", wanted.describe(), None, "", NOT_MEASURED, "no container")
            )
            continue
        millicores = round(info.nano_cpus / NANOCPUS_PER_MILLICORE)
        applied = (info.memory_limit, info.memory_swap_limit, millicores)
        expected = (wanted.memory_bytes, wanted.memory_bytes, wanted.cpu_millicores)
        shown = f"{format_bytes_binary(info.memory_limit)}, swap off, {millicores}m CPU"
        if info.memory_swap_limit != info.memory_limit:
            shown = shown.replace("swap off", "swap ON")
        status = PASS if applied == expected else FAIL
        metrics.append(
            Metric(f"limits: {name}", wanted.describe(), shown, "", status, "docker inspect HostConfig")
        )
    return metrics


# --- under load ----------------------------------------------------------------------------


def measure_running(
    run: LocalVerify,
    local: LocalStack,
    containers: Mapping[str, ContainerInfo],
    limits: Mapping[str, ContainerLimits],
    report: VerifyReport,
) -> None:
    settings = run.settings
    journey, urls = run.stack.journey, local.urls()
    run.progress(f"[verify] load: {settings.requests} requests, {settings.concurrency} at a time")
    with Sampler({name: info.id for name, info in containers.items()}) as sampler:
        load = run_load(
            journey, urls, requests=settings.requests, concurrency=settings.concurrency, progress=run.progress
        )
    report.add(load_metrics(load, settings))
    report.add(memory_metrics(sampler, limits, settings, report))
    report.add(cpu_metrics(sampler, limits, settings))
    report.add(finds_only_metrics(journey, urls, load, settings, run.progress))
    report.add(integrity(run, local, urls, load))
    after = containers_of(local)
    report.add(oom_and_restarts(run, after))
    sick = [n for n in run.stack.service_names if n not in after or after[n].health not in ("healthy", "")]
    report.add(
        Metric(
            "all health checks passing",
            "every service healthy after the load",
            f"{len(run.stack.services) - len(sick)}/{len(run.stack.services)} healthy",
            "",
            FAIL if sick else PASS,
            "docker inspect State.Health" + (f"; not healthy: {', '.join(sick)}" if sick else ""),
        )
    )


def load_metrics(load: LoadResult, settings: VerifySettings) -> list[Metric]:
    how = f"{load.requests} learn + query requests through sutra-api, {settings.concurrency} at a time"
    first = load.first_errors[0] if load.first_errors else None
    return timed_metrics("load", load, first, how, (50, 95, 99), "per request, successful ones")


def timed_metrics(
    prefix: str, timed: TimedRequests, first_error: str | None, how: str, percentiles: Sequence[int], per: str
) -> list[Metric]:
    """Errors (a gate: none), throughput and latency percentiles of requests made and timed."""
    errors = gate(
        f"{prefix}: errors",
        "0",
        timed.errors,
        "",
        timed.errors == 0,
        how + (f"; first: {first_error}" if first_error else ""),
    )
    throughput = Metric(f"{prefix}: throughput", "-", round(timed.throughput, 1), "req/s", INFO, how)
    return [errors, throughput, *latency_metrics(prefix, timed, percentiles, per)]


def latency_metrics(prefix: str, timed: TimedRequests, percentiles: Sequence[int], how: str) -> list[Metric]:
    metrics = []
    for p in percentiles:
        value = timed.percentile(p)
        metrics.append(
            Metric(
                f"{prefix}: p{p} latency",
                "-",
                None if value is None else round(value * 1000, 1),
                "ms",
                INFO if value is not None else NOT_MEASURED,
                how,
            )
        )
    return metrics


def finds_only_metrics(
    journey, urls: Mapping[str, str], load: LoadResult, settings: VerifySettings, progress
) -> list[Metric]:
    """The journey's find of one learned fact, alone, in a closed loop (:mod:`.closed_loop`):
    latencies a load client on the same machine does not inflate, comparable with `ab -k`."""
    if not load.facts:
        why = "nothing was learned during the load, so there is nothing to find"
        return [Metric("finds only: p50 latency", "-", None, "ms", NOT_MEASURED, why)]
    fact = load.facts[0]
    method, path, body = journey.find.render({"marker": fact.marker, "id": fact.id})
    url = urls[journey.find.service].rstrip("/") + path
    count = max(2, settings.requests // 2)
    progress(f"[verify] finds only: {count} x {method} {path}, {settings.concurrency} connections")
    result = closed_loop(url, method, body, requests=count, concurrency=settings.concurrency)
    how = (
        f"{count} x {journey.find.describe()} on {journey.find.service}, closed loop, "
        f"{settings.concurrency} connections kept alive (as `ab -k -c {settings.concurrency} -n {count}`)"
    )
    per = "first byte sent to last byte read, 2xx answers"
    return timed_metrics("finds only", result, result.first_error, how, (50, 95), per)


def memory_metrics(
    sampler: Sampler, limits: Mapping[str, ContainerLimits], settings: VerifySettings, report: VerifyReport
) -> list[Metric]:
    metrics = []
    rate = sampler.samples_per_second
    for name, wanted in limits.items():
        usage: Usage | None = sampler.usage.get(name)
        if usage is None or usage.samples == 0:
            metrics.append(
                Metric(
                    f"memory: {name}",
                    f"< {format_bytes_binary(wanted.memory_bytes)}",
                    None,
                    "MiB",
                    NOT_MEASURED,
                    "no cgroup counters found for the container",
                )
            )
            continue
        ceiling = min(wanted.memory_bytes, settings.memory_targets.get(name, wanted.memory_bytes))
        target = f"< {format_bytes_binary(ceiling)}"
        if name in settings.memory_targets:
            target += " (plan)"
        max_usage = (
            f"; cgroup max usage {usage.max_usage / MIB:.0f} MiB" if usage.max_usage is not None else ""
        )
        metrics.append(
            gate(
                f"memory: {name}",
                target,
                round(usage.peak_working_set / MIB, 1),
                "MiB",
                usage.peak_working_set < ceiling,
                f"peak working set (usage - inactive file) over {usage.samples} samples, "
                f"{rate:.1f}/s{max_usage}",
            )
        )
        report.memory.append(
            {
                "service": name,
                "peak_bytes": usage.peak_working_set,
                "limit_bytes": wanted.memory_bytes,
                "max_usage_bytes": usage.max_usage,
            }
        )
    return metrics


def cpu_metrics(
    sampler: Sampler, limits: Mapping[str, ContainerLimits], settings: VerifySettings
) -> list[Metric]:
    low, high = settings.cpu_utilization
    metrics = []
    for name, wanted in limits.items():
        usage = sampler.usage.get(name)
        if usage is None or not usage.seconds or not wanted.cpu_request_millicores:
            metrics.append(
                Metric(
                    f"cpu: {name}",
                    f"{low:g}-{high:g} % of request",
                    None,
                    "%",
                    NOT_MEASURED,
                    "no cgroup counters found for the container",
                )
            )
            continue
        percent = usage.cpu_seconds / usage.seconds / (wanted.cpu_request_millicores / 1000) * 100
        status = (PASS if low <= percent <= high else FAIL) if settings.cpu_gate else INFO
        metrics.append(
            Metric(
                f"cpu: {name}",
                f"{low:g}-{high:g} % of request",
                round(percent, 1),
                "%",
                status,
                f"{usage.cpu_seconds:.1f} CPU-s over {usage.seconds:.1f} s of load / "
                f"{wanted.cpu_request_millicores}m requested"
                + ("" if settings.cpu_gate else "; no gate (sutra.verify.cpu_gate)"),
            )
        )
    return metrics


def integrity(run: LocalVerify, local: LocalStack, urls: Mapping[str, str], load: LoadResult) -> list[Metric]:
    """Every fact the load learned is found, and again after the services that keep the data
    (stack.toml's `data`: a volume locally) restart, one after another."""
    facts, journey = load.facts, run.stack.journey
    keepers = [s.name for s in run.stack.services if s.data]
    lost = missing_facts(journey, urls, facts)
    metrics = [
        gate(
            "integrity: facts found after the load",
            f"{len(facts)}/{len(facts)}",
            len(facts) - len(lost),
            "",
            not lost,
            f"each learned fact looked for by the journey's find ({journey.find.describe()})",
        )
    ]
    name = "integrity: facts found after a storage restart"
    containers = containers_of(local)
    missing = [k for k in keepers if k not in containers]
    if not keepers or missing:
        why = f"{', '.join(missing)}: no container" if missing else "no service keeps data (stack.toml: data)"
        run.progress(f"[verify] {name}: not measured: {why}")
        metrics.append(Metric(name, "all found", None, "", NOT_MEASURED, why))
        return metrics
    try:
        for keeper in keepers:
            container = containers[keeper].name
            run.progress(f"[verify] restarting {keeper}")
            run.engine.restart(container)

            def healthy_again(container: str = container) -> bool:
                info = run.engine.container(container)
                return info is not None and info.health == "healthy"

            wait_until(healthy_again, timeout=60, interval=0.2, what=f"{keeper} to be healthy again")
        found_after = wait_until(
            lambda: missing_facts(journey, urls, facts) == [] or None,
            timeout=30,
            interval=1,
            what="the facts after the restart",
        )
    except TimedOut:
        found_after = None
    lost_after = [] if found_after else missing_facts(journey, urls, facts)
    metrics.append(
        gate(
            name,
            f"{len(facts)}/{len(facts)}",
            len(facts) - len(lost_after),
            "",
            not lost_after,
            f"docker restart {', '.join(keepers)}, then every fact queried",
        )
    )
    return metrics


def oom_and_restarts(run: LocalVerify, containers: Mapping[str, ContainerInfo]) -> list[Metric]:
    killed = [n for n, c in containers.items() if c.oom_killed]
    restarts = {n: c.restart_count for n, c in containers.items() if c.restart_count}
    return [
        gate(
            "no OOMKilled containers",
            "0",
            len(killed),
            "",
            not killed,
            "docker inspect State.OOMKilled" + (f": {', '.join(killed)}" if killed else ""),
        ),
        gate(
            "restarts",
            "0",
            sum(restarts.values()),
            "",
            not restarts,
            "docker inspect RestartCount" + (f": {restarts}" if restarts else ""),
        ),
    ]
