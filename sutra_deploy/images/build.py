"""Building the stack's images: planning, choosing base images, running builds, reporting."""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from tabulate import tabulate

from ..core.errors import BuildFailed, CommandFailed, SourceRootError, SutraError, failure_reason
from ..core.stack import Service, Stack
from ..core.units import mb
from ..tools.engine import Engine
from .base_images import BaseImageMaker
from .build_cache import BuildCache, fingerprint
from .buildkit import BuilderName, build_file, check_builder, choose_builder
from .dockerfiles.parse import read_dockerfile
from .preflight import check_builds
from .pulls import PullMemory

log = logging.getLogger("sutra")

BaseMode = Literal["auto", "local", "official"]
BASE_MODES: tuple[BaseMode, ...] = ("auto", "local", "official")
_STEP_LINE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
# BuildKit's plain progress: `#7 [deps 2/4] RUN pip install …`, then `#7 CACHED`, `#7 DONE 3.1s`
# or `#7 ERROR: …`, vertices interleaved when stages run in parallel.
_VERTEX_LINE = re.compile(r"^#(\d+) \[([^\]]+)\] (.*)$")
_VERTEX_STATE = re.compile(r"^#(\d+) (CACHED|DONE|ERROR)\b")
_VERTEX_OUTPUT = re.compile(r"^#(\d+) \d+\.\d+ (.*\S)")  # what a step printed, after its seconds
# A stage several Dockerfiles declare alike, a layer their images share: `shared-<digest>` as
# `inv dockerfiles --lock` writes it, or a name of the checkout's own (the reference's shared-web).
_SHARED_STAGE = re.compile(
    r"^FROM\s+\S+\s+AS\s+(shared-[a-z0-9][a-z0-9_.-]*)\s*$", re.MULTILINE | re.IGNORECASE
)


@dataclass(frozen=True)
class BuildStep:
    service: Service
    version: str
    ref: str
    context: Path
    dockerfile: Path
    build_args: Mapping[str, str]
    build_file: Path | None = None  # what the builder is given (BuildKit: with cache mounts)

    @property
    def given_file(self) -> Path:
        return self.build_file or self.dockerfile


@dataclass(frozen=True)
class BuildResult:
    step: BuildStep
    seconds: float
    steps_total: int
    steps_cached: int
    error: BuildFailed | None = None
    unchanged: bool = False  # not built: its inputs are those of the image it already has

    @property
    def ok(self) -> bool:
        return self.error is None


def declared_build_args(dockerfile: Path) -> set[str]:
    """The ARGs the Dockerfile declares, read by the project's Dockerfile parser."""
    return read_dockerfile(dockerfile, dockerfile.name).declared_args()


def plan_builds(stack: Stack, services: Sequence[Service], version: str, root: Path) -> list[BuildStep]:
    """One step per service, in build order; every path is checked before anything runs."""
    stack.check_version(version)
    steps = []
    for service in services:
        service.check_inside(root, version)  # no symlink leads a context or Dockerfile out of root
        context = root / service.context
        dockerfile = root / service.dockerfile(version)
        if not context.is_dir():
            raise SourceRootError(
                f"{service.name}: build context {service.context} not found under {root}; "
                "point --root or SUTRA_ROOT at a Sutra checkout"
            )
        if not dockerfile.is_file():
            import shlex

            # A v2 Dockerfile of its own that the checkout lacks is one `inv dockerfiles` writes.
            own = [v for v in stack.versions if service.dockerfile(v) == service.dockerfile(version)]
            hint = (
                f"write it with `inv dockerfiles --root {shlex.quote(str(root))} "
                f"--service {service.name} --write`"
                if version == stack.default_version and len(own) == 1
                else "point --root or SUTRA_ROOT at a Sutra checkout"
            )
            missing = service.dockerfile(version)
            raise SourceRootError(f"{service.name}: {missing} not found under {root}; {hint}")
        steps.append(BuildStep(service, version, service.ref(version), context, dockerfile, {}))
    return steps


def choose_base_images(
    stack: Stack,
    engine: Engine,
    maker: BaseImageMaker,
    steps: Sequence[BuildStep],
    mode: BaseMode,
    pulls: PullMemory | None = None,
) -> dict[str, str]:
    """Build ARG -> image for every base the planned Dockerfiles declare.

    ``official`` passes nothing (the Dockerfiles' defaults). ``local`` uses the images
    made by ``inv base-images``, making missing or stale ones first. ``auto`` keeps an
    official image the engine has or can pull, and falls back to the local one otherwise
    (a pull that failed is not tried again for an hour: :mod:`.pulls`).
    """
    check_base_mode(mode)
    declared = set().union(*(declared_build_args(s.dockerfile) for s in steps)) if steps else set()
    bases = [b for b in stack.base_images if b.build_arg in declared]
    if mode == "official":
        return {}
    if mode == "auto":
        memory = pulls or PullMemory()
        # A dry run pulls nothing: it plans with what the engine already has.
        local_needed = [
            b
            for b in bases
            if engine.image(b.official) is None and (engine.dry or not memory.pull(engine, b.official))
        ]
        if local_needed:
            log.info(
                "[base] cannot pull %s%s: using local base images",
                ", ".join(b.official for b in local_needed),
                memory.held_back_note(),
            )
    else:
        local_needed = bases
    if local_needed:
        maker.ensure([b.key for b in local_needed])
    return {b.build_arg: b.local for b in local_needed}


def check_base_mode(mode: str) -> None:
    if mode not in BASE_MODES:
        raise SutraError(f"unknown base image mode {mode!r}; choose one of {', '.join(BASE_MODES)}")


def with_build_args(steps: Sequence[BuildStep], base_args: Mapping[str, str]) -> list[BuildStep]:
    out = []
    for step in steps:
        declared = declared_build_args(step.dockerfile)
        args = {k: v for k, v in base_args.items() if k in declared}
        out.append(replace(step, build_args=args))
    return out


def with_build_files(steps: Sequence[BuildStep], builder: BuilderName) -> list[BuildStep]:
    """Each step with the Dockerfile ``builder`` is given (:func:`.buildkit.build_file`)."""
    return [replace(step, build_file=build_file(builder, step.dockerfile)) for step in steps]


@dataclass
class BuildProgress:
    """Turns the builder's output into one readable line per step, prefixed by image: the
    legacy builder's `Step N/M` lines, or BuildKit's plain progress (:data:`_VERTEX_LINE`).

    "Cached" counts the steps that ran nothing: answered from the cache, or only metadata (the
    legacy builder's ENV, FROM, …; BuildKit lists no metadata step, and its FROM runs nothing)."""

    ref: str
    emit: Callable[[str], None]
    total: int = 0
    ran: int = 0  # steps that ran a container: the ones not answered from the cache
    current: str = "the start"
    _vertices: dict[str, str] = field(default_factory=dict)  # BuildKit: number -> its step
    _cached: set[str] = field(default_factory=set)
    _printed: dict[str, str] = field(default_factory=dict)  # BuildKit: number -> its last output line
    failure: str | None = None  # BuildKit: what the step that failed printed last
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, line: str) -> None:
        match = _STEP_LINE.match(line)
        if match:
            self.total = int(match.group(2))
            self.current = f"Step {match.group(1)}/{match.group(2)} ({_short(match.group(3))})"
            self.emit(f"[{self.ref}] Step {match.group(1)}/{match.group(2)} : {_short(match.group(3), 90)}")
        elif line.strip().startswith("---> Running in "):
            self.ran += 1
        elif match := _VERTEX_LINE.match(line):
            number, where, what = match.groups()
            if where == "internal" or number in self._vertices:
                return
            self._vertices[number] = self.current = f"[{where}] {_short(what)}"
            self.total += 1
            if what.upper().startswith("FROM "):
                self._cached.add(number)
            self.emit(f"[{self.ref}] [{where}] {_short(what, 90)}")
        elif match := _VERTEX_STATE.match(line):
            number, state = match.groups()
            if number not in self._vertices:
                return
            if state == "CACHED":
                self._cached.add(number)
            elif state == "ERROR":  # with stages in parallel, not always the last one started
                self.current = self._vertices[number]
                self.failure = self._printed.get(number)
        elif match := _VERTEX_OUTPUT.match(line):
            self._printed[match.group(1)] = match.group(2)

    @property
    def cached(self) -> int:
        if self._vertices:
            return len(self._cached)
        # Steps that only change metadata (ARG, FROM, ENV, ...) run nothing either way.
        return self.total - self.ran


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class Builder:
    def __init__(
        self,
        engine: Engine,
        *,
        emit: Callable[[str], None] = log.info,
        release: str | None = None,
        cache: BuildCache | None = None,
        builder: BuilderName = "legacy",
    ) -> None:
        self.engine = engine
        self.builder = builder
        self.emit = emit
        self.release = release  # also tag each image with it
        self.cache = cache  # None: always build
        self._fingerprints: dict[str, str | None] = {}

    def build_one(self, step: BuildStep, no_cache: bool) -> BuildResult:
        started = time.monotonic()
        inputs = None
        if self.cache is not None and not self.engine.dry:
            # Taken with --no-cache too: what that build makes is recorded like any other.
            inputs = self._inputs(step)
            if not no_cache and self._unchanged(step):
                if self.release:
                    self.engine.tag(step.ref, step.service.reference(tag=self.release))
                seconds = time.monotonic() - started
                self.emit(f"[{step.ref}] unchanged since its last build here: not built again")
                return BuildResult(step, seconds, 0, 0, unchanged=True)
        progress = BuildProgress(step.ref, self.emit)
        self.emit(f"[{step.ref}] building from {step.dockerfile.name} in {step.context}")
        try:
            self.engine.build(
                tag=step.ref,
                context=step.context,
                dockerfile=step.given_file,
                build_args=step.build_args,
                labels={"org.sutra.service": step.service.name, "org.sutra.version": step.version},
                no_cache=no_cache,
                on_line=progress,
                also_tag=[step.service.reference(tag=self.release)] if self.release else [],
                builder=self.builder,
            )
        except CommandFailed as error:
            reason = progress.failure or failure_reason(error.output)
            failed = BuildFailed(step.ref, progress.current, reason)
            self.emit(f"[{step.ref}] FAILED at {progress.current}")
            return BuildResult(step, time.monotonic() - started, progress.total, progress.cached, failed)
        seconds = time.monotonic() - started
        if self.engine.dry:
            return BuildResult(step, 0.0, 0, 0)
        if self.cache is not None and inputs is not None:
            self.cache.record(step.ref, inputs, self._image_id(step.ref))
        self.emit(f"[{step.ref}] done in {seconds:.1f}s ({progress.cached}/{progress.total} steps cached)")
        return BuildResult(step, seconds, progress.total, progress.cached)

    def build_stage(self, stage: SharedStage, steps: Sequence[BuildStep]) -> None:
        """Build a shared stage alone, untagged, for its images to take from the cache; skipped
        when none of them will build. A failure stops nothing: each image then builds the stage
        itself and reports what went wrong in its own build."""
        images = [steps[i] for i in stage.images]
        if self.cache is not None and not self.engine.dry and all(self._unchanged(s) for s in images):
            return
        first = images[0]
        progress = BuildProgress(stage.name, self.emit)
        names = ", ".join(s.service.name for s in images)
        self.emit(f"[{stage.name}] building the stage {names} share, from {first.dockerfile.name}, first")
        started = time.monotonic()
        try:
            self.engine.build(
                tag=None,
                target=stage.name,
                context=first.context,
                dockerfile=first.given_file,
                build_args=first.build_args,
                labels={},
                no_cache=False,
                on_line=progress,
                builder=self.builder,
            )
        except CommandFailed:
            self.emit(f"[{stage.name}] FAILED at {progress.current}: each image builds it itself")
            return
        if not self.engine.dry:
            self.emit(f"[{stage.name}] done in {time.monotonic() - started:.1f}s")

    def _inputs(self, step: BuildStep) -> str | None:
        """The step's fingerprint, taken once a run (a stage build asks before its images do)."""
        if step.ref not in self._fingerprints:
            self._fingerprints[step.ref] = fingerprint(
                step.context, step.given_file, step.build_args, self._image_id, self.builder
            )
        return self._fingerprints[step.ref]

    def _unchanged(self, step: BuildStep) -> bool:
        assert self.cache is not None
        return self.cache.unchanged(step.ref, self._inputs(step), self._image_id(step.ref))

    def _image_id(self, ref: str) -> str | None:
        info = self.engine.image(ref)
        return info.id if info else None

    def build_all(self, steps: Sequence[BuildStep], *, jobs: int, no_cache: bool) -> list[BuildResult]:
        """Build in order, ``jobs`` at a time (one at a time in a dry run, so that the commands
        print in order); after a failure, start nothing new.

        Under the legacy builder, a stage several images declare alike is built alone first,
        and those images after it: built at the same time, each would make its own copy of
        the stage, and of its layer (files written at another time are other bytes); built
        after, they take it from the cache, side by side. One at a time, the order does that
        alone; with --no-cache nothing is taken from the cache, so nothing waits. BuildKit needs
        no such step: builds running at once in one engine share each step they have in
        common, so the stage is made once and the images carry the same layer."""
        stages = shared_stage_builds(steps) if self.builder == "legacy" and jobs > 1 and not no_cache else []
        # Tasks: the stages first, then the images, each image after the stages it takes.
        tasks: list[Callable[[], BuildResult | None]] = [
            functools.partial(self.build_stage, stage, steps) for stage in stages
        ]
        tasks += [functools.partial(self.build_one, step, no_cache) for step in steps]
        waits_for = {
            len(stages) + i: [s for s, stage in enumerate(stages) if i in stage.images]
            for i in range(len(steps))
        }
        workers = 1 if self.engine.dry else max(1, jobs)
        pending = list(range(len(tasks)))
        done: dict[int, BuildResult | None] = {}
        failed = False
        with ThreadPoolExecutor(max_workers=workers) as pool:
            running: dict[Future[BuildResult | None], int] = {}
            while pending or running:
                ready = [i for i in pending if all(e in done for e in waits_for.get(i, ()))]
                for index in ready[: workers - len(running)] if not failed else ():
                    pending.remove(index)
                    running[pool.submit(tasks[index])] = index
                if not running:
                    break  # after a failure: what has not started never does
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    result = future.result()  # a bug in one build: raised once the others are done
                    done[running.pop(future)] = result
                    failed = failed or (result is not None and not result.ok)
        return [result for _, result in sorted(done.items()) if result is not None]


@dataclass(frozen=True)
class SharedStage:
    """A stage several images' Dockerfiles declare under one `shared-*` name."""

    name: str
    images: tuple[int, ...]  # indexes of the build steps that declare it; the first's file builds it


def shared_stages(step: BuildStep) -> frozenset[str]:
    try:
        text = step.dockerfile.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    return frozenset(_SHARED_STAGE.findall(text))


def shared_stage_builds(steps: Sequence[BuildStep]) -> list[SharedStage]:
    """Each `shared-*` stage two or more of the images declare, in the order they first do."""
    declaring: dict[str, list[int]] = {}
    for index, step in enumerate(steps):  # each Dockerfile read once
        for name in sorted(shared_stages(step)):
            declaring.setdefault(name, []).append(index)
    return [SharedStage(name, tuple(images)) for name, images in declaring.items() if len(images) > 1]


def concurrency(jobs: int | None, builder: BuilderName, images: int, cpus: Callable[[], int]) -> int:
    """Images built at once: ``jobs`` when given; else every image under BuildKit, which
    schedules the steps of all of them in one engine (a build waiting on a download leaves the
    cores to the others: 23 s against 30 s cold for the reference stack at two at a time), and
    one per core of the engine (``cpus``) under the legacy builder, whose builds each run their
    steps one by one (five at once on two cores: 111 s against 94 s)."""
    if jobs is not None:
        return jobs
    if builder == "buildkit":
        return max(1, images)
    return max(1, min(images, cpus()))


def raise_first_failure(results: Sequence[BuildResult]) -> None:
    failed = [r for r in results if r.error is not None]
    if failed:
        raise failed[0].error  # type: ignore[misc]


def build_images(
    stack: Stack,
    engine: Engine,
    *,
    names: Sequence[str],
    version: str,
    root: Path,
    bases: BaseMode,
    jobs: int | None,
    no_cache: bool,
    ca_bundle: Path | None,
    runtime_ca_bundle: Path | None = None,
    release: str | None = None,
    builder: str = "auto",
) -> list[BuildResult]:
    """The whole build phase: check inputs, pick or make base images, build, report."""
    services = stack.select(names)
    steps = plan_builds(stack, services, version, root)
    # Wrong flags are named before the daemon is asked anything.
    check_base_mode(bases)
    check_builder(builder)
    engine.ensure_available()
    chosen = choose_builder(builder, engine)
    maker = BaseImageMaker(stack, engine, ca_bundle=ca_bundle, runtime_ca_bundle=runtime_ca_bundle, jobs=jobs)
    steps = with_build_args(steps, choose_base_images(stack, engine, maker, steps, bases))
    steps = with_build_files(steps, chosen)
    # Every Dockerfile against the builder, before the first build.
    check_builds(steps, engine, root, made_here=[b.local for b in stack.base_images], builder=chosen)
    jobs = concurrency(jobs, chosen, len(steps), engine.host_cpus)
    if release:
        log.info("[build] release %s: each image is also tagged :%s", release, release)
    builder = Builder(engine, release=release, cache=BuildCache(), builder=chosen)
    results = builder.build_all(steps, jobs=jobs, no_cache=no_cache)
    raise_first_failure(results)
    return results


@dataclass(frozen=True)
class BuildReport:
    """What `inv build` built: for people the summary table, for machines one JSON object."""

    results: tuple[BuildResult, ...]
    sizes: Mapping[str, int]  # image -> bytes, as the engine has it

    @classmethod
    def of(cls, results: Sequence[BuildResult], engine: Engine) -> BuildReport:
        found = {r.step.ref: engine.image(r.step.ref) for r in results}
        return cls(tuple(results), {ref: info.size_bytes for ref, info in found.items() if info})

    def table(self) -> str:
        rows = [
            [
                result.step.ref,
                f"{result.seconds:.1f}",
                mb(self.sizes[result.step.ref]) if result.step.ref in self.sizes else "-",
                "unchanged" if result.unchanged else f"{result.steps_cached}/{result.steps_total}",
            ]
            for result in self.results
        ]
        return tabulate(
            rows,
            headers=["Image", "Seconds", "Size", "Cached steps"],
            colalign=("left", "right", "right", "right"),
        )

    def to_json(self) -> str:
        images = [
            {
                "service": result.step.service.name,
                "image": result.step.ref,
                "seconds": round(result.seconds, 1),
                "size_bytes": self.sizes.get(result.step.ref),
                "unchanged": result.unchanged,
                "steps_total": result.steps_total,
                "steps_cached": result.steps_cached,
            }
            for result in self.results
        ]
        return json.dumps({"images": images}, indent=2)
