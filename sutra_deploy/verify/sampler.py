"""Memory and CPU of running containers, read from their cgroups several times a second.

The Docker SDK's one-shot stats take about a second a call, too slow to catch a peak, so the
sampler reads the kernel's files directly. The working set is what Kubernetes compares with
a limit: usage minus inactive file cache. Beside it, the cgroup's own high-water mark.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CgroupFiles:
    """Where one container's counters live, on cgroup v1 or v2."""

    usage: Path  # bytes in use, page cache included
    stat: Path  # memory.stat: the inactive file cache to subtract
    peak: Path | None  # the high-water mark, if the kernel keeps one
    cpu: Path  # v1: cpuacct.usage (ns); v2: cpu.stat (usage_usec)
    v2: bool

    @classmethod
    def find(cls, container_id: str, root: Path = CGROUP_ROOT) -> CgroupFiles | None:
        for memory_dir, cpu_file in (
            (
                root / "memory" / "docker" / container_id,
                root / "cpuacct" / "docker" / container_id / "cpuacct.usage",
            ),
            (
                root / "memory" / "system.slice" / f"docker-{container_id}.scope",
                root / "cpuacct" / "system.slice" / f"docker-{container_id}.scope" / "cpuacct.usage",
            ),
        ):
            if (memory_dir / "memory.usage_in_bytes").exists():
                return cls(
                    memory_dir / "memory.usage_in_bytes",
                    memory_dir / "memory.stat",
                    memory_dir / "memory.max_usage_in_bytes",
                    cpu_file,
                    v2=False,
                )
        for unified in (
            root / "system.slice" / f"docker-{container_id}.scope",
            root / "docker" / container_id,
        ):
            if (unified / "memory.current").exists():
                peak = unified / "memory.peak"
                return cls(
                    unified / "memory.current",
                    unified / "memory.stat",
                    peak if peak.exists() else None,
                    unified / "cpu.stat",
                    v2=True,
                )
        return None

    def working_set(self) -> int:
        usage = int(self.usage.read_text())
        stat = dict(line.split(" ", 1) for line in self.stat.read_text().splitlines() if " " in line)
        # v1 counts the container's children in total_*, as the kubelet reads it.
        inactive = int(stat.get("total_inactive_file") or stat.get("inactive_file") or 0)
        return max(0, usage - inactive)

    def max_usage(self) -> int | None:
        return int(self.peak.read_text()) if self.peak is not None else None

    def cpu_seconds(self) -> float:
        if not self.v2:
            return int(self.cpu.read_text()) / 1e9
        for line in self.cpu.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
        return 0.0


@dataclass
class Usage:
    peak_working_set: int = 0
    samples: int = 0
    cpu_seconds: float = 0.0
    seconds: float = 0.0
    max_usage: int | None = None


@dataclass
class Sampler:
    """Samples each container every ``interval`` seconds on a thread, between start and stop."""

    containers: Mapping[str, str]  # service -> container id
    interval: float = 0.2
    root: Path = CGROUP_ROOT
    usage: dict[str, Usage] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.files = {}
        for service, container_id in self.containers.items():
            found = CgroupFiles.find(container_id, self.root)
            if found is None:
                self.missing.append(service)
            else:
                self.files[service] = found
                self.usage[service] = Usage()

    def __enter__(self) -> Sampler:
        self._cpu_start = {s: f.cpu_seconds() for s, f in self.files.items()}
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        elapsed = time.monotonic() - self._started
        for service, files in self.files.items():
            usage = self.usage[service]
            self._sample(service, files)
            usage.seconds = elapsed
            try:
                usage.cpu_seconds = files.cpu_seconds() - self._cpu_start[service]
                usage.max_usage = files.max_usage()
            except (OSError, ValueError):  # the container went away (a restart): keep what was sampled
                pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for service, files in self.files.items():
                self._sample(service, files)

    def _sample(self, service: str, files: CgroupFiles) -> None:
        try:
            working_set = files.working_set()
        except (OSError, ValueError):  # gone, or read while the kernel was rewriting it
            return
        usage = self.usage[service]
        usage.samples += 1
        usage.peak_working_set = max(usage.peak_working_set, working_set)

    @property
    def samples_per_second(self) -> float:
        counts = [u.samples for u in self.usage.values()]
        seconds = max((u.seconds for u in self.usage.values()), default=0.0)
        return min(counts) / seconds if counts and seconds else 0.0
