"""The plan's Kubernetes limits, as the container limits a local verify runs under.

They come from the rendered production manifests and nowhere else. A what-if override
(`--memory sutra-api=256Mi`) replaces one service's figure. A CPU limit above the host's
cores is clamped to the host, since the engine refuses more, and the row says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..core import yaml_text
from ..core.errors import SutraError
from ..core.units import MIB
from ..k8s.capacity import CapacityReport
from ..k8s.quantities import format_bytes_binary, memory_bytes, millicores
from ..local.compose_file import STARTUP_HEALTH_TIMING
from ..local.leftovers import owned_compose, owner_labels


@dataclass(frozen=True)
class ContainerLimits:
    service: str
    cpu_millicores: int  # what the container gets here (after clamping)
    memory_bytes: int
    cpu_request_millicores: int
    memory_request_bytes: int
    manifest_cpu_millicores: int  # what the manifest (or the override) says
    overridden: tuple[str, ...] = ()  # "memory", "cpu": the what-if figures

    @property
    def clamped(self) -> bool:
        return self.cpu_millicores < self.manifest_cpu_millicores

    def describe(self) -> str:
        cpu = f"{self.cpu_millicores}m CPU"
        if self.clamped:
            cpu += f" (manifest {self.manifest_cpu_millicores}m, clamped to the host's cores)"
        what_if = f"; what-if {' and '.join(self.overridden)}" if self.overridden else ""
        return f"{format_bytes_binary(self.memory_bytes)} memory, {cpu}{what_if}"


# The smallest limits the engine takes: 6 MiB of memory (docker run -m), 0.01 CPU (--cpus).
SMALLEST = {"memory": 6 * MIB, "cpu": 10}
EXAMPLE = {"memory": "sutra-api=256Mi", "cpu": "sutra-api=500m"}


def parse_overrides(values: Sequence[str], kind: str, known: Sequence[str]) -> dict[str, int]:
    """`--memory sutra-api=256Mi` (repeatable) -> {service: bytes}; `--cpu x=500m` -> millicores.
    Read before the engine is asked anything; :func:`check_fits` bounds them by the host."""
    parsed = {}
    for value in values:
        name, sep, amount = value.partition("=")
        flag = f"--{kind} {value!r}"
        if not sep or not amount:
            raise SutraError(f"{flag}: expected SERVICE=QUANTITY, e.g. {EXAMPLE[kind]}")
        if name not in known:
            raise SutraError(f"{flag}: unknown service {name!r}; known services: {', '.join(known)}")
        try:
            number = memory_bytes(amount) if kind == "memory" else millicores(amount)
        except SutraError:
            raise SutraError(f"{flag}: {amount!r} is no {kind} quantity; e.g. {EXAMPLE[kind]}") from None
        if number < SMALLEST[kind]:
            least = format_bytes_binary(SMALLEST[kind]) if kind == "memory" else f"{SMALLEST[kind]}m"
            unit = "; a number without a unit is bytes" if kind == "memory" else ""
            raise SutraError(
                f"{flag}: less than the {least} the engine can give a container{unit}; e.g. {EXAMPLE[kind]}"
            )
        parsed[name] = number
    return parsed


def check_fits(
    memory: Mapping[str, int], cpu: Mapping[str, int], *, host_memory: int, host_cpus: int
) -> None:
    """A what-if asks for no more than the machine has: beyond it, nothing is measured."""
    for name, value in memory.items():
        if value > host_memory:
            raise SutraError(
                f"--memory {name}={format_bytes_binary(value)}: more than this machine's "
                f"{format_bytes_binary(host_memory)} of memory"
            )
    for name, value in cpu.items():
        if value > host_cpus * 1000:
            raise SutraError(
                f"--cpu {name}={value}m: more than this machine's {host_cpus} CPUs ({host_cpus * 1000}m)"
            )


def container_limits(
    capacity: CapacityReport,
    *,
    host_cpus: int,
    memory: Mapping[str, int] | None = None,
    cpu: Mapping[str, int] | None = None,
) -> dict[str, ContainerLimits]:
    """Each service's limits from the manifests' capacity (one pod), what-ifs applied."""
    limits = {}
    for service in capacity.services:
        entry = ContainerLimits(
            service=service.name,
            cpu_millicores=service.limits.cpu_millicores,
            memory_bytes=service.limits.memory_bytes,
            cpu_request_millicores=service.requests.cpu_millicores,
            memory_request_bytes=service.requests.memory_bytes,
            manifest_cpu_millicores=service.limits.cpu_millicores,
        )
        overridden = []
        if memory and service.name in memory:
            entry = replace(entry, memory_bytes=memory[service.name])
            overridden.append("memory")
        if cpu and service.name in cpu:
            entry = replace(
                entry, cpu_millicores=cpu[service.name], manifest_cpu_millicores=cpu[service.name]
            )
            overridden.append("cpu")
        entry = replace(
            entry, cpu_millicores=min(entry.cpu_millicores, host_cpus * 1000), overridden=tuple(overridden)
        )
        limits[service.name] = entry
    return limits


def compose_override(limits: Mapping[str, ContainerLimits]) -> str:
    """A compose file that caps each service (memory with swap off, and CPUs) and checks its
    health every half second: verify's startup figure is the first passing check, so it needs
    the fast interval a long-running local stack does without (local/compose_file.py)."""
    services = {
        name: {
            "mem_limit": entry.memory_bytes,
            "memswap_limit": entry.memory_bytes,  # equal to the limit: no swap, as on a node
            "cpus": round(entry.cpu_millicores / 1000, 3),
            "healthcheck": dict(STARTUP_HEALTH_TIMING),
        }
        for name, entry in limits.items()
    }
    # Who owns the project: `inv cleanup` takes it only once this process is gone.
    return yaml_text.dump(owned_compose(owner_labels("verify"), services))
