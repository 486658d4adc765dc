"""An :class:`ImageSpec` written as Dockerfile text, in the reference implementation's shape
(see reference/packages/sutra-api/Dockerfile.optimized): a deps stage on the build base that
pip-installs the declared dependencies into a plain ``--target`` folder and byte-compiles them
with the code; a distroless Python runtime that gets both folders, runs as 65532:65532,
checks its own health with ``python3 -c`` (there is no shell or curl) and starts its server
in exec form. Bases are build ARGs whose defaults are the official images."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from .health import health_probe
from .layers import SharedLayer
from .model import APP, OWN_ENV, RUNTIME_USER, SITE, ImageSpec


# Only what a runtime loads, in the deps stage after the install: no test suites, type stubs,
# C sources or headers of compiled modules; shared objects without their symbol tables (strip,
# when the stage has binutils: the local python base does; a spike found uvloop's unstripped).
# The reference Dockerfiles repeat these lines (tests/unit/images/dockerfiles/test_render.py
# holds them equal).
def prune_steps(folder: str) -> tuple[str, ...]:
    return (
        f"find {folder} -mindepth 2 -type d \\( -name tests -o -name test \\) -prune -exec rm -rf {{}} +",
        f"find {folder} -type f \\( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.c'"
        " -o -name '*.h' \\) -delete",
        # Not what auditwheel patched (vendored `*.libs/`, an $ORIGIN run path): binutils' strip
        # breaks a patchelf'd file ("ELF load command address/offset not page-aligned").
        f"if command -v strip >/dev/null; then find {folder} -type f -name '*.so*' ! -path '*.libs/*'"
        """ -exec sh -c 'for f; do readelf -d "$f" | grep -q "PATH.*ORIGIN" """
        """|| strip --strip-unneeded "$f"; done' sh {} +; fi""",
    )


# After byte-compiling: each dependency module as its byte-code alone, in the module's place
# (`x.pyc` for `x.py`), which Python imports without the source: the runtime loads the same
# code and the image carries it once. The service's own code keeps its sources (tracebacks).
def sourceless_steps(folder: str) -> tuple[str, ...]:
    return (
        'python3 -c "import pathlib, sys; tag = sys.implementation.cache_tag; '
        "[(c.replace(s.with_suffix('.pyc')), s.unlink()) for c in pathlib.Path('"
        + folder
        + "').rglob(f'__pycache__/*.{tag}.pyc') for s in [c.parent.parent / (c.name.split('.')[0] + '.py')] "
        'if s.is_file()]"',
        f"find {folder} -type d -name __pycache__ -empty -delete",
    )


def compile_step(folders: str) -> str:
    """Byte-compile ahead of time (the runtime user cannot write __pycache__): unchecked-hash
    pycs stay valid whatever mtimes COPY gives the sources."""
    return f"python3 -m compileall -q -f -j 0 --invalidation-mode unchecked-hash {folders}"


PRUNE_SITE = prune_steps(SITE)
SOURCELESS_SITE = sourceless_steps(SITE)


def dedupe_step(folder: str, below: Sequence[str]) -> str:
    """Drop from ``folder`` each distribution a layer below already holds at the same version
    (the same ``*.dist-info`` name): the files its RECORD lists, then its dist-info."""
    return (
        'python3 -c "import csv, pathlib, shutil, sys; site = pathlib.Path(sys.argv[1]); '
        "have = {d.name for f in sys.argv[2:] for d in pathlib.Path(f).glob('*.dist-info')}; "
        "[[(site / row[0]).unlink(missing_ok=True) for row in csv.reader((d / 'RECORD').open()) "
        "if row and not row[0].startswith('..')] + [shutil.rmtree(d)] "
        "for d in list(site.glob('*.dist-info')) if d.name in have]\" "
        + " ".join([folder, *below])
        + f" && find {folder} -mindepth 1 -type d -empty -delete"
    )


def render(spec: ImageSpec) -> str:
    service = spec.service
    context = "." if spec.context in (".", "") else spec.context
    lines = [f"# {service.name} {spec.version}, written by `inv dockerfiles` from {spec.declared_in}"]
    lines[-1] += f"\n# and the pre-plan {spec.old}." if spec.old else "."
    lines += [
        f"# Build context: {'the monorepo root' if context == '.' else context}",
        f"#   docker build -t {service.ref(spec.version)} -f {spec.dockerfile} {context}",
    ]
    lines += [f"ARG {arg}={default}" for arg, default in spec.bases]
    (build_arg, _), (runtime_arg, _) = spec.bases
    installs = bool(spec.requirements)
    stage = "deps" if installs else "build"
    for layer in spec.shared:
        lines += ["", *_shared_stage(layer, build_arg)]
    lines += ["", f"FROM ${{{build_arg}}} AS {stage}"]
    lines += [f"COPY --from={layer.stage} {layer.folder} {layer.folder}" for layer in spec.shared]
    for source, dest in spec.local_copies:
        lines.append(f"COPY {source} {dest}")
    if installs:
        lines += _install(spec)
    for source, dest in (*spec.code_copies, *spec.app_data):
        lines.append(f"COPY {source} {dest}")
    if installs:
        lines += [
            "# Byte-compile ahead of time: the runtime user cannot write __pycache__. unchecked-hash",
            "# pycs stay valid whatever mtimes COPY gives the sources (pip compiles nothing: --no-compile).",
        ]
    else:
        lines += [
            "# The runtime user cannot write __pycache__, so compile here; unchecked-hash pycs stay",
            "# valid whatever mtimes COPY gives the sources.",
        ]
    compiled = f"{APP} {SITE}" if installs else APP
    compile_line = f"RUN {compile_step(compiled)}"
    if installs:
        lines += [
            compile_line + " \\",
            *(
                f"    && {step}" + (" \\" if i < len(SOURCELESS_SITE) - 1 else "")
                for i, step in enumerate(SOURCELESS_SITE)
            ),
        ]
    else:
        lines.append(compile_line)
    lines += [
        "",
        f"FROM ${{{runtime_arg}}}",
    ]
    if spec.shared:
        lines += [
            "# The shared layers first, straight onto the runtime base: the same layers in every",
            "# image that shares them.",
            *(f"COPY --from={layer.stage} {layer.folder} {layer.folder}" for layer in spec.shared),
        ]
    labels = [("org.opencontainers.image.title", service.name)]
    if spec.description:
        labels.append(("org.opencontainers.image.description", spec.description))
    lines += _continued("LABEL", [f"{key}={_quoted(value, always=True)}" for key, value in labels], indent=6)
    if installs:
        lines.append(f"COPY --from={stage} {SITE} {SITE}")
    lines.append(f"COPY --from={stage} {APP} {APP}")
    for source, dest in spec.other_data:
        lines.append(f"COPY {source} {dest}")
    path = [SITE, *(layer.folder for layer in reversed(spec.shared)), APP] if installs else [APP]
    own = {**OWN_ENV, "PYTHONPATH": ":".join(path)}
    env = [*own.items(), *spec.env]
    lines.append(f"WORKDIR {APP}")
    lines += _continued("ENV", [f"{key}={_quoted(value)}" for key, value in env], indent=4)
    if spec.smoke:
        lines += [
            "# Smoke test in the runtime image itself (exec form: there is no shell), so a missing shared",
            "# library or module fails the build instead of the rollout.",
            "RUN " + json.dumps(["python3", "-c", f"import {', '.join(spec.smoke)}"]),
        ]
    options = " ".join(f"--{key}={value}" for key, value in spec.health_options)
    lines += [
        f"EXPOSE {spec.port}",
        f"USER {RUNTIME_USER}",
        f"HEALTHCHECK {options} \\",
        "    CMD " + json.dumps(health_probe(spec.health, spec.port, dict(spec.health_options)["timeout"])),
        "ENTRYPOINT " + json.dumps(list(spec.entrypoint)),
    ]
    if spec.cmd:
        lines.append("CMD " + json.dumps(list(spec.cmd)))
    return "\n".join(lines) + "\n"


def _install(spec: ImageSpec) -> list[str]:
    lines = [
        "# A plain --target directory, not a venv: a venv pins the interpreter's path, and the",
        "# runtime image keeps Python at /usr/bin while the build image may keep it elsewhere.",
        "# Console scripts (bin/) carry this stage's interpreter path; the runtime uses `python3 -m`.",
    ]
    if spec.build_packages:
        lines.append(
            "# Build-only Debian packages (sutra.dockerfiles.build_packages): they stay in this stage."
        )
    if spec.lock:
        lines.append(f"# Constraints: every version as {spec.lock.path} pins it.")
    if spec.constraints:
        lines.append(
            f"# Constraints: the pre-plan image pinned these tighter than {Path(spec.declared_in).name}."
        )
        lines += [f"#   {constraint} ({why})" for constraint, why in spec.constraints]
    if spec.shared:
        lines.append("# What the shared layers hold is dropped here: the image carries it once.")
    steps: list[list[str]] = []
    if spec.build_packages:
        steps += [
            ["apt-get update"],
            ["apt-get install -y --no-install-recommends " + " ".join(spec.build_packages)],
            ["rm -rf /var/lib/apt/lists/*"],
        ]
    constraints = [*(spec.lock.constraints if spec.lock else ()), *(c for c, _ in spec.constraints)]
    steps += _pip_install(SITE, spec.requirements, constraints, [layer.folder for layer in spec.shared])
    return lines + _chained(steps)


def _shared_stage(layer: SharedLayer, build_arg: str) -> list[str]:
    """The stage that makes a shared layer: the same text in every Dockerfile that uses it."""
    lines = [
        f"# Dependencies that {_listed(layer.services)} share,",
        "# pinned by the lock: this stage reads the same in each of their Dockerfiles, so the",
        "# build cache makes it once and their images carry the same layer.",
        f"FROM ${{{build_arg}}} AS {layer.stage}",
        *(f"COPY --from={p.stage} {p.folder} {p.folder}" for p in layer.parents),
    ]
    steps = _pip_install(
        layer.folder, layer.requirements, layer.constraints, [p.folder for p in layer.parents]
    )
    steps.append([compile_step(layer.folder)])
    steps += [[step] for step in sourceless_steps(layer.folder)]
    return lines + _chained(steps)


def _pip_install(
    folder: str, requirements: Sequence[str], constraints: Sequence[str], below: Sequence[str]
) -> list[list[str]]:
    steps = [_printf(requirements, "/tmp/requirements.txt")]
    install = "python3 -m pip install --no-cache-dir --no-compile --disable-pip-version-check \\"
    target = f"    --target {folder} -r /tmp/requirements.txt"
    if constraints:
        steps.append(_printf(constraints, "/tmp/constraints.txt"))
        target += " -c /tmp/constraints.txt"
    steps.append([install, target])
    if below:
        steps.append([dedupe_step(folder, below)])
    steps.append([f"rm -rf {folder}/bin"])
    steps += [[step] for step in prune_steps(folder)]
    return steps


def _printf(lines: Sequence[str], path: str) -> list[str]:
    return ["printf '%s\\n' \\", *[f"    {shlex.quote(line)} \\" for line in lines], f"    > {path}"]


def _chained(steps: list[list[str]]) -> list[str]:
    """One RUN of the steps, each after `&&`, continued with backslashes."""
    out: list[str] = []
    for index, step in enumerate(steps):
        first, *more = step
        prefix = "RUN " if index == 0 else "    && "
        out.append(prefix + first)
        out += ["    " + line for line in more]
    for index in range(len(out) - 1):
        if not out[index].endswith("\\"):
            out[index] += " \\"
    return out


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def _continued(keyword: str, items: list[str], indent: int) -> list[str]:
    lines = [f"{keyword} {items[0]}" + (" \\" if len(items) > 1 else "")]
    for index, item in enumerate(items[1:], 1):
        lines.append(" " * indent + item + (" \\" if index < len(items) - 1 else ""))
    return lines


def _quoted(value: str, *, always: bool = False) -> str:
    """A LABEL or ENV value: bare when Docker reads it as is (unless ``always``), else in
    double quotes."""
    if not always and value and all(c.isalnum() or c in "-_./:,@+%=" for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'
