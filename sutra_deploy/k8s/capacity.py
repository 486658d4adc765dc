"""What the rendered manifests ask of a cluster: the minimum (requests x minimum replicas)
and the maximum (limits x maximum replicas), per service and in total."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from tabulate import tabulate

from ..core.errors import SutraError
from ..core.stack import Stack
from ..tools.kubectl import Kubectl
from .environments import Environment
from .manifests import hpa_by_deployment, render
from .quantities import format_bytes_binary, memory_bytes, millicores


@dataclass(frozen=True)
class Footprint:
    cpu_millicores: int
    memory_bytes: int

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(self.cpu_millicores + other.cpu_millicores, self.memory_bytes + other.memory_bytes)

    def times(self, n: int) -> Footprint:
        return Footprint(self.cpu_millicores * n, self.memory_bytes * n)

    def as_json(self) -> dict:
        return {"cpu_millicores": self.cpu_millicores, "memory_bytes": self.memory_bytes}


@dataclass(frozen=True)
class ServiceCapacity:
    name: str
    min_replicas: int
    max_replicas: int
    requests: Footprint  # one pod
    limits: Footprint  # one pod

    @property
    def minimum(self) -> Footprint:
        return self.requests.times(self.min_replicas)

    @property
    def maximum(self) -> Footprint:
        return self.limits.times(self.max_replicas)

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "requests": self.requests.as_json(),
            "limits": self.limits.as_json(),
            "min": self.minimum.as_json(),
            "max": self.maximum.as_json(),
        }


@dataclass(frozen=True)
class CapacityReport:
    services: tuple[ServiceCapacity, ...]

    @property
    def minimum(self) -> Footprint:
        return sum((s.minimum for s in self.services), Footprint(0, 0))

    @property
    def maximum(self) -> Footprint:
        return sum((s.maximum for s in self.services), Footprint(0, 0))

    def as_json(self) -> dict:
        return {
            "services": [s.as_json() for s in self.services],
            "min": self.minimum.as_json(),
            "max": self.maximum.as_json(),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)

    def table(self) -> str:
        def cpu(f: Footprint) -> str:
            return f"{f.cpu_millicores / 1000:g}"

        rows = [
            [
                s.name,
                f"{s.min_replicas}-{s.max_replicas}" if s.max_replicas != s.min_replicas else s.min_replicas,
                cpu(s.minimum),
                format_bytes_binary(s.minimum.memory_bytes),
                cpu(s.maximum),
                format_bytes_binary(s.maximum.memory_bytes),
            ]
            for s in self.services
        ]
        rows.append(
            [
                "TOTAL",
                "",
                cpu(self.minimum),
                format_bytes_binary(self.minimum.memory_bytes),
                cpu(self.maximum),
                format_bytes_binary(self.maximum.memory_bytes),
            ]
        )
        return tabulate(
            rows,
            headers=["Service", "Replicas", "Min CPU", "Min memory", "Max CPU", "Max memory"],
            colalign=("left", "right", "right", "right", "right", "right"),
        )


def capacity(objects: Sequence[dict], order: Sequence[str] = ()) -> CapacityReport:
    """From rendered objects: every Deployment, scaled by the HPA that targets it if any."""
    hpas = hpa_by_deployment(objects)
    services = []
    for deployment in (o for o in objects if o.get("kind") == "Deployment"):
        name = deployment["metadata"]["name"]
        containers = deployment["spec"]["template"]["spec"]["containers"]
        requests, limits = Footprint(0, 0), Footprint(0, 0)
        for container in containers:
            resources = container.get("resources") or {}
            if "requests" not in resources or "limits" not in resources:
                raise SutraError(
                    f"deployment {name}: container {container['name']} sets no requests or limits"
                )
            requests += _footprint(resources["requests"])
            limits += _footprint(resources["limits"])
        if name in hpas:
            scaling = hpas[name]["spec"]
            low, high = int(scaling.get("minReplicas", 1)), int(scaling["maxReplicas"])
        else:
            low = high = int(deployment["spec"].get("replicas", 1))
        services.append(ServiceCapacity(name, low, high, requests, limits))
    rank = {name: i for i, name in enumerate(order)}
    services.sort(key=lambda s: (rank.get(s.name, len(rank)), s.name))
    return CapacityReport(tuple(services))


def _footprint(resources: dict) -> Footprint:
    return Footprint(millicores(resources.get("cpu", 0)), memory_bytes(resources.get("memory", 0)))


def environment_capacity(kubectl: Kubectl, env: Environment, stack: Stack) -> CapacityReport:
    """`inv capacity`: the footprint of the environment's rendered manifests, in build order."""
    return capacity(render(kubectl, env, stack), order=stack.service_names)
