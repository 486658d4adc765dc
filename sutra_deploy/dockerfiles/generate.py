"""One service's v2 Dockerfile, worked out from what the checkout says and then written as
text: :func:`plan_image` reads the package (through fix-deps' readers), the pre-plan
Dockerfile and stack.toml into an :class:`ImageSpec`, refusing what an optimized image must
not carry; :func:`render` writes the spec in the reference implementation's shape.

The shape (see reference/packages/sutra-api/Dockerfile.optimized): a deps stage on the build
base that pip-installs the declared dependencies into a plain ``--target`` folder and
byte-compiles them with the code; a distroless Python runtime that gets both folders, runs as
65532:65532, checks its own health with ``python3 -c`` (there is no shell or curl) and starts
its server in exec form. Bases are build ARGs whose defaults are the official images."""

from __future__ import annotations

import json
import posixpath
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from ..deps.imports import SKIPPED_DIRS
from ..deps.model import COUPLING, UNDECLARED, Finding, PythonPackage
from ..deps.monorepo import Monorepo
from ..stack import HealthCheck, Service, Stack
from .model import DockerfileRefused, DockerfileSettings
from .package import PackageFacts, local_closure, monorepo_packages
from .parse import Instruction
from .pins import compatible, tighter_clauses
from .preplan import PrePlan
from .shell import exec_words, shell_feature

SITE = "/opt/site"
APP = "/opt/app"
LOCAL = "/opt/local"
RUNTIME_USER = "65532:65532"
HEALTH_OPTIONS = (("interval", "5s"), ("timeout", "3s"), ("start-period", "5s"), ("retries", "3"))

# Environment a pre-plan image set for building or for its user-site install: meaningless,
# or wrong, in the optimized image (which sets PYTHONPATH itself).
_DROPPED_ENV = frozenset(
    {
        "PATH",
        "PYTHONUSERBASE",
        "VIRTUAL_ENV",
        "DEBIAN_FRONTEND",
        "HOME",
        "PYTHONNOUSERSITE",
        "LD_LIBRARY_PATH",
    }
)
# Trust and proxy settings are the build machine's or the site's, never the image's: a CA a
# runtime should trust goes in through `sutra.runtime_ca_bundle`, and the runtime base points
# SSL_CERT_FILE at the distribution's set itself.
_MACHINE_ENV = frozenset(
    {
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "GIT_SSL_CAINFO",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
    }
)
# What the generated image sets itself (PYTHONPATH to its own folders).
_OWN_ENV = {"PYTHONPATH": "", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
_DROPPED_ENV_PREFIXES = ("PIP_", "POETRY_", "PIPENV_", "UV_", "APK_", "APT_")
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh"})
_INIT_WRAPPERS = frozenset({"tini", "tini-static", "dumb-init"})
_METADATA_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in", ".dockerignore", "poetry.lock")
_METADATA_PREFIXES = ("Dockerfile", "requirements", "constraints", "README", "LICENSE", "Pipfile")


@dataclass(frozen=True)
class ImageSpec:
    service: Service
    version: str
    dockerfile: str  # relative to the source root
    context: str  # relative to the source root, as stack.toml gives it
    declared_in: str
    old: str | None  # the pre-plan Dockerfile it was read from
    bases: tuple[tuple[str, str], ...]  # (build ARG, official default): build, runtime
    description: str | None
    build_packages: tuple[str, ...]
    requirements: tuple[str, ...]  # lines of the requirements file pip installs
    constraints: tuple[tuple[str, str], ...]  # (constraint, why)
    local_copies: tuple[tuple[str, str], ...]  # (source in the context, folder in the deps stage)
    code_copies: tuple[tuple[str, str], ...]
    app_data: tuple[tuple[str, str], ...]  # package data into /opt/app, from the context
    other_data: tuple[tuple[str, str], ...]  # package data the old image kept elsewhere
    env: tuple[tuple[str, str], ...]
    smoke: tuple[str, ...]  # modules the runtime image imports at build time
    port: int
    health: HealthCheck
    health_options: tuple[tuple[str, str], ...]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    entrypoint_source: str
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> dict:
        return {
            "context": self.context,
            "from": [p for p in (self.declared_in, self.old) if p],
            "requirements": list(self.requirements),
            "constraints": [c for c, _ in self.constraints],
            "local_packages": [s for s, _ in self.local_copies],
            "package_data": [s for s, _ in (*self.app_data, *self.other_data)],
            "build_packages": list(self.build_packages),
            "env": dict(self.env),
            "port": self.port,
            "entrypoint": {"source": self.entrypoint_source, "argv": [*self.entrypoint, *self.cmd]},
        }


@dataclass(frozen=True)
class Inputs:
    """What one service's plan is made from."""

    stack: Stack
    service: Service
    root: Path
    monorepo: Monorepo
    facts: PackageFacts
    preplan: PrePlan | None
    findings: Sequence[Finding]
    services_by_package: Mapping[str, str]  # canonical distribution -> service
    extras: Sequence[str]
    settings: DockerfileSettings


def plan_image(inputs: Inputs) -> ImageSpec:
    return _Planner(inputs).plan()


class _Planner:
    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.service = inputs.service
        self.facts = inputs.facts
        self.preplan = inputs.preplan
        self.context = (inputs.root / inputs.service.context).resolve()
        self.notes: list[str] = []

    def refuse(self, problem: str) -> DockerfileRefused:
        return DockerfileRefused(f"{self.service.name}: {problem}")

    def hint_root(self) -> str:
        return shlex.quote(str(self.inputs.root))

    # -- the plan ----------------------------------------------------------------------

    def plan(self) -> ImageSpec:
        self.check_findings()
        self.note_ports()
        requirements = self.requirements()
        local = self.local_packages(requirements)
        local_keys = {pkg.key for pkg, _, _ in local}
        constraints = self.constraints(requirements, local_keys)
        entrypoint, cmd, source = self.command()
        self.check_server([*entrypoint, *cmd], requirements, local_keys)
        app_data, other_data = self.package_data({pkg.folder.resolve() for pkg, _, _ in local})
        lines = [str(r) for r in requirements if canonicalize_name(r.name) not in local_keys]
        lines += [self.local_line(pkg, requirement) for pkg, requirement, _ in local]
        build_packages = self.inputs.settings.packages_for(self.service.name)
        if build_packages and not lines:
            self.notes.append("build packages left out: there is nothing to install")
            build_packages = ()
        self.note_system_packages(build_packages)
        stack = self.inputs.stack
        build_base = stack.base_image(self.inputs.settings.build_base)
        runtime_base = stack.base_image(self.inputs.settings.runtime_base)
        return ImageSpec(
            service=self.service,
            version=stack.default_version,
            dockerfile=self.service.dockerfile(stack.default_version),
            context=self.service.context,
            declared_in=self.facts.declared_in,
            old=self.preplan.path if self.preplan else None,
            bases=(
                (build_base.build_arg, build_base.official),
                (runtime_base.build_arg, runtime_base.official),
            ),
            description=self.facts.description,
            build_packages=build_packages,
            requirements=tuple(lines),
            constraints=tuple(constraints),
            local_copies=tuple(
                (self.in_context(pkg.folder), f"{LOCAL}/{pkg.folder.name}") for pkg, _, _ in local
            ),
            code_copies=tuple((self.in_context(c.source), f"{APP}/{c.source.name}") for c in self.facts.code),
            app_data=tuple(app_data),
            other_data=tuple(other_data),
            env=tuple(self.environment()),
            smoke=tuple(self.smoke_imports([*entrypoint, *cmd], local)),
            port=self.service.port.container,
            health=self.service.health,
            health_options=self.health_options(),
            entrypoint=tuple(entrypoint),
            cmd=tuple(cmd),
            entrypoint_source=source,
            notes=tuple(self.notes),
        )

    def check_findings(self) -> None:
        """Never bake a coupling (or what only came through one) into an image."""
        blocking = [f for f in self.inputs.findings if f.kind in (COUPLING, UNDECLARED)]
        if not blocking:
            return
        listed = "; ".join(f"{f.kind} {f.dependency}" for f in blocking)
        command = f"inv fix-deps --root {self.hint_root()} --service {self.service.name}"
        if all(f.fixable for f in blocking):
            hint = f"run `{command} --apply`, then this again"
        else:
            hint = f"`{command}` shows what needs a code change first"
        raise self.refuse(
            f"fix-deps finds {listed} in {self.facts.pkg.rel}; an image must not bake them in: {hint}"
        )

    def requirements(self) -> list[Requirement]:
        own = self.facts.pkg.key
        chosen = list(self.facts.requirements)
        for name in self.inputs.extras:
            if name in self.facts.extras:
                chosen += self.facts.extras[name]
        kept, seen = [], set()
        for requirement in chosen:
            key = canonicalize_name(requirement.name)
            other = self.inputs.services_by_package.get(key)
            if other is not None and other != self.service.name:
                raise self.refuse(
                    f"{self.facts.declared_in} declares {requirement}, the package of the {other} service: "
                    f"an image must not bake a coupling in: run `inv fix-deps --root {self.hint_root()} "
                    f"--service {self.service.name} --apply`, then this again"
                )
            if key == own or str(requirement) in seen:
                continue
            seen.add(str(requirement))
            kept.append(requirement)
        left_out = sorted(set(self.facts.extras) - set(self.inputs.extras))
        if left_out:
            self.notes.append(f"optional extras left out: {', '.join(left_out)} (--extras NAME adds one)")
        return kept

    def local_packages(self, requirements: list[Requirement]) -> list[tuple[PythonPackage, Requirement, str]]:
        """The monorepo packages the requirements name, and theirs: never another service's,
        even through a shared package (pip would look for it on an index)."""
        local = {
            key: pkg
            for key, pkg in monorepo_packages(self.inputs.monorepo).items()
            if key != self.facts.pkg.key
        }
        found = local_closure(self.inputs.monorepo, tuple(requirements), local, self.facts.pkg.distribution)
        for pkg, _, asker in found:
            other = self.inputs.services_by_package.get(pkg.key)
            if other is not None:
                raise self.refuse(
                    f"{asker} declares {pkg.distribution}, the package of the {other} service: an image must "
                    f"not bake a coupling in; make {asker} reach {other} over the network"
                )
            if not _within(pkg.folder, self.context):
                raise self.refuse(
                    f"{asker} depends on {pkg.distribution} ({pkg.rel}), a monorepo package outside "
                    f"the build context {self.service.context}: build {self.service.name} from the root "
                    f'(context = "." in stack.toml) or install {pkg.distribution} from an index'
                )
            self.notes.append(f"monorepo package {pkg.distribution} ({pkg.rel}) copied and installed")
        return found

    @staticmethod
    def local_line(pkg: PythonPackage, requirement: Requirement) -> str:
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        return f"{LOCAL}/{pkg.folder.name}{extras}"

    def in_context(self, path: Path) -> str:
        return posixpath.normpath(path.resolve().relative_to(self.context).as_posix())

    # -- pins ---------------------------------------------------------------------------

    def constraints(self, requirements: list[Requirement], local: set[str]) -> list[tuple[str, str]]:
        """Old pins tighter than the metadata, kept as constraints; the rest reported."""
        if self.preplan is None:
            return []
        declared = {canonicalize_name(r.name): r for r in requirements}
        old: dict[str, list] = {}
        for pin in self.preplan.pins:
            old.setdefault(canonicalize_name(pin.requirement.name), []).append(pin)
        kept: list[tuple[str, str]] = []
        not_declared = []
        for key, pins in old.items():
            if key in local or key == self.facts.pkg.key:
                continue
            if key not in declared:
                not_declared.append(pins[0].requirement.name)
                continue
            requirement = declared[key]
            old_spec = SpecifierSet(
                ",".join(str(p.requirement.specifier) for p in pins if p.requirement.specifier)
            )
            added = tighter_clauses(requirement.specifier, old_spec)
            if not len(added):
                continue
            where = pins[0].where
            mine = f"{requirement.name}{requirement.specifier}" if requirement.specifier else requirement.name
            if not compatible(requirement.specifier, old_spec):
                self.notes.append(
                    f"{where} pins {requirement.name}{old_spec}, which contradicts "
                    f"{self.facts.declared_in}'s "
                    f"{mine}: the metadata wins"
                )
                continue
            constraint = f"{requirement.name}{added}"
            kept.append((constraint, f"{where}; declared {mine}"))
            self.notes.append(
                f"constraint {constraint} kept: {where} pins it tighter than "
                f"{Path(self.facts.declared_in).name}'s {mine}"
            )
        if not_declared:
            names = ", ".join(sorted(set(not_declared), key=str.lower))
            self.notes.append(
                f"left out what {self.preplan.path} installed but {self.facts.declared_in} does not "
                f"declare: {names}"
            )
        return sorted(kept)

    # -- the command -------------------------------------------------------------------

    def command(self) -> tuple[list[str], list[str], str]:
        """(ENTRYPOINT, CMD, where it came from), both exec form, run by the runtime's python3."""
        if self.preplan is not None and (self.preplan.entrypoint or self.preplan.cmd):
            return self.old_command(self.preplan)
        return self.script_command()

    def old_command(self, preplan: PrePlan) -> tuple[list[str], list[str], str]:
        entrypoint = self.argv(preplan.entrypoint) if preplan.entrypoint else []
        cmd_instruction = preplan.cmd
        if preplan.entrypoint is not None and preplan.entrypoint.exec_form is None:
            cmd_instruction = None  # a shell-form ENTRYPOINT ignores CMD
        cmd = self.argv(cmd_instruction) if cmd_instruction else []
        used = [i for i in (preplan.entrypoint, cmd_instruction) if i is not None]
        where = " and ".join(f"{i.keyword} ({preplan.dockerfile.where(i)})" for i in used)
        argv, stripped = _without_init([*entrypoint, *cmd])
        if not argv:
            raise self.refuse(f"{where} runs nothing the runtime could start")
        # Where ENTRYPOINT ends and CMD begins, if the old image had both (CMD stays overridable).
        split = len(entrypoint) - stripped if entrypoint and cmd and len(entrypoint) > stripped else 0
        converted, how = self.python_command(argv, preplan.dockerfile.where(used[0]))
        converted = self.with_stack_port(converted)
        if split:
            split += len(converted) - len(argv)
        source = f"{where}{how}"
        self.notes.append(f"command from {source}")
        return (converted[:split], converted[split:], source) if split else (converted, [], source)

    def argv(self, instruction: Instruction) -> list[str]:
        where = f"the {instruction.keyword} in {self.preplan.dockerfile.where(instruction)}"  # type: ignore[union-attr]
        argv = instruction.exec_form
        if argv is None:
            feature = shell_feature(instruction.arguments)
            if feature is not None:
                raise self.refuse(
                    f"{where} needs a shell (`{feature}`), which the distroless runtime does not have: "
                    f"write it in exec form without shell features, e.g. {instruction.keyword} "
                    '["uvicorn", "app.main:app", "--port", "8000"], then run this again'
                )
            argv = exec_words(instruction.arguments) if instruction.arguments.strip() else []
        if argv and (posixpath.basename(argv[0]) in _SHELLS or argv[0].endswith(".sh")):
            shown = " ".join(argv[:3]) + (" …" if len(argv) > 3 else "")
            raise self.refuse(
                f"{where} runs `{shown}`, a shell, which the distroless runtime does not have: run the "
                "server directly in exec form (its settings as ENV), then run this again"
            )
        return list(argv)

    def python_command(self, argv: list[str], where: str) -> tuple[list[str], str]:
        """The command as something the runtime's python3 runs: (the new argv, how)."""
        program, rest = argv[0], argv[1:]
        name = posixpath.basename(program)
        if _is_python(name):
            return ["python3", *(self.app_path(a) if a.endswith(".py") else a for a in rest)], ""
        if name.endswith(".py"):
            return ["python3", self.app_path(program), *rest], f": {program} run by python3"
        if "/" in program and posixpath.basename(posixpath.dirname(program)) != "bin":
            raise self.refuse(
                f"{where} runs {program}, a file of the old image that the runtime (Python only) cannot "
                "run: give the command as a Python module or console script, then run this again"
            )
        if name in self.facts.scripts:
            target = self.facts.scripts[name]
            return [*_script_call(target), *rest], f": console script {name} = {target}"
        modules = self.inputs.settings.script_modules
        if name in modules:
            return ["python3", "-m", modules[name], *rest], f": {name} becomes python3 -m {modules[name]}"
        guess = name.replace("-", "_")
        self.notes.append(
            f"{where} runs {name}: assumed it runs as `python3 -m {guess}` (set "
            f"sutra.dockerfiles.script_modules.{name} if it does not)"
        )
        return ["python3", "-m", guess, *rest], f": {name} assumed to be python3 -m {guess}"

    def check_server(self, argv: list[str], requirements: list[Requirement], local: set[str]) -> None:
        """`python3 -m uvicorn` needs uvicorn: say so when the metadata does not declare it."""
        if len(argv) < 3 or argv[:2] != ["python3", "-m"]:
            return
        top = argv[2].split(".")[0]
        if top in sys.stdlib_module_names or top in self.facts.pkg.modules:
            return
        declared = {canonicalize_name(r.name) for r in requirements} | local
        if canonicalize_name(top) not in declared:
            self.notes.append(
                f"warning: the command runs python3 -m {argv[2]}, but {self.facts.declared_in} does not "
                f"declare {top}: the image's import check fails unless a dependency brings it in; declare it"
            )

    def app_path(self, program: str) -> str:
        workdir = self.preplan.workdir if self.preplan else "/"
        if program.startswith("/") and (program + "/").startswith(workdir.rstrip("/") + "/"):
            return posixpath.relpath(program, workdir)
        return program

    def script_command(self) -> tuple[list[str], list[str], str]:
        scripts = self.facts.scripts
        chosen = None
        if len(scripts) == 1:
            chosen = next(iter(scripts))
        else:
            for name in (self.facts.pkg.distribution, self.service.name):
                if name in scripts:
                    chosen = name
                    break
        if chosen is None:
            old = (
                f"{self.preplan.path} has no CMD or ENTRYPOINT"
                if self.preplan
                else "there is no pre-plan Dockerfile"
            )
            found = (
                f"its console scripts ({', '.join(sorted(scripts))}) do not say which runs the service"
                if scripts
                else f"{self.facts.pkg.rel} declares no console script"
            )
            raise self.refuse(
                f"no command to run: {old} and {found}; add a CMD to the old Dockerfile or a "
                "[project.scripts] entry named like the package"
            )
        source = f"console script {chosen} = {scripts[chosen]} ({self.facts.pkg.rel})"
        self.notes.append(f"command from {source}")
        return _script_call(scripts[chosen]), [], source

    def with_stack_port(self, argv: list[str]) -> list[str]:
        """`--port N`, `--bind host:N`: the server listens where stack.toml says."""
        port = str(self.service.port.container)
        out = list(argv)
        for index, word in enumerate(out):
            option, sep, value = word.partition("=")
            if option not in ("--port", "--bind", "-b"):
                continue
            position = index if sep else index + 1
            if position >= len(out):
                continue
            current = value if sep else out[position]
            host, colon, number = current.rpartition(":") if option != "--port" else ("", "", current)
            if number.isdigit() and number != port:
                replaced = f"{host}{colon}{port}"
                out[position] = f"{option}={replaced}" if sep else replaced
                self.notes.append(
                    f"the command's {option} {current} disagrees with stack.toml's port {port}: uses {port}"
                )
            if host in ("127.0.0.1", "localhost"):
                self.notes.append(f"the command binds {host}: other containers cannot reach it")
        for index, word in enumerate(out[:-1]):
            if word == "--host" and out[index + 1] in ("127.0.0.1", "localhost"):
                self.notes.append(f"the command binds {out[index + 1]}: other containers cannot reach it")
        return out

    def smoke_imports(
        self, argv: list[str], local: list[tuple[PythonPackage, Requirement, str]]
    ) -> list[str]:
        """Modules the runtime image imports while it is built, so that a missing one fails the
        build, not the rollout; never a module that would start the server on import."""
        own = set(self.facts.pkg.modules) | {m for pkg, _, _ in local for m in pkg.modules}
        found: list[str] = []
        if len(argv) > 2 and argv[0] == "python3" and argv[1] == "-m":
            module = argv[2]
            top = module.split(".")[0]
            if top not in own:
                found.append(module)
            elif "." in module:
                found.append(module.rsplit(".", 1)[0])
            elif self.facts.module_is_package(module):
                found.append(module)
            targets = argv[3:]
        elif len(argv) > 2 and argv[0] == "python3" and argv[1] == "-c":
            targets = []
            statement = argv[2].split("; from ", 1)
            if len(statement) == 2:
                found.append(statement[1].split(" import ", 1)[0])
        else:
            targets = []
        for word in targets:  # an ASGI or WSGI app: `package.module:app`
            module, sep, attribute = word.partition(":")
            if (
                sep
                and _dotted(module)
                and _dotted(attribute.removesuffix("()"))
                and module.split(".")[0] in own
            ):
                found.append(module)
        return list(dict.fromkeys(found))

    # -- port, health, environment, data -----------------------------------------------

    def health_options(self) -> tuple[tuple[str, str], ...]:
        port, health = self.service.port.container, self.service.health
        options = dict(HEALTH_OPTIONS)
        check = self.preplan.healthcheck if self.preplan else None
        if check is None:
            return tuple(options.items())
        if check.arguments.strip().upper() == "NONE":
            self.notes.append(
                f"{self.preplan.dockerfile.where(check)} turned health checks off; stack.toml's check is used"
            )  # type: ignore[union-attr]
            return tuple(options.items())
        for key in ("interval", "timeout", "start-period", "retries"):
            value = check.flag(key)
            if value and (_seconds(value) is not None or (key == "retries" and value.isdigit())):
                options[key] = value
        probe = "an HTTP GET of " + (health.path or "") if health.protocol == "http" else "a TCP connect"
        self.notes.append(
            f"health check: {probe} on port {port} by python3 (stack.toml), in place of "
            f"`{_short(check.arguments)}` ({self.preplan.dockerfile.where(check)})"  # type: ignore[union-attr]
        )
        return tuple(options.items())

    def note_ports(self) -> None:
        port = self.service.port.container
        if self.preplan and self.preplan.exposed and list(self.preplan.exposed) != [port]:
            listed = " ".join(map(str, self.preplan.exposed))
            self.notes.append(f"{self.preplan.path} EXPOSEs {listed}; stack.toml's port {port} wins")

    def environment(self) -> list[tuple[str, str]]:
        if self.preplan is None:
            return []
        kept, dropped = [], []
        old_ports = {str(p) for p in self.preplan.exposed}
        port = str(self.service.port.container)
        for key, value in self.preplan.env:
            if key in _OWN_ENV:
                if value != _OWN_ENV[key] and key != "PYTHONPATH":
                    self.notes.append(f"ENV {key}={value} replaced: the image sets {key}={_OWN_ENV[key]}")
                continue
            if key in _DROPPED_ENV or key.startswith(_DROPPED_ENV_PREFIXES):
                dropped.append(key)
                continue
            if key in _MACHINE_ENV:
                self.notes.append(
                    f"ENV {key} left out: trust and proxies are the machine's, not the image's "
                    "(a CA the runtime must trust goes in sutra.runtime_ca_bundle)"
                )
                continue
            if "$" in value:
                self.notes.append(
                    f"ENV {key}={value} left out: it refers to another variable; set it where the image runs"
                )
                continue
            if (key == "PORT" or key.endswith("_PORT")) and value in old_ports and value != port:
                self.notes.append(f"ENV {key}={value} is the old port: set to stack.toml's {port}")
                value = port
            kept.append((key, value))
        if dropped:
            self.notes.append(f"ENV left out (build-time or user-site settings): {', '.join(dropped)}")
        return kept

    def package_data(self, local_folders: set[Path]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """What the old Dockerfile copied next to the code (templates/, static/), kept where
        the code finds it: the package folder's layout under /opt/app."""
        if self.preplan is None:
            return [], []
        pkg = self.facts.pkg.folder.resolve()
        code = {c.source.resolve() for c in self.facts.code}
        packages_dir = (self.inputs.root / "packages").resolve()
        app: dict[str, str] = {}
        other: dict[str, str] = {}

        def add(source: Path, dest: str, table: dict[str, str]) -> None:
            if not _within(source, self.context):
                self.notes.append(f"{_rel(source, self.inputs.root)} is outside the build context: left out")
                return
            if dest not in app and dest not in other:
                table[dest] = self.in_context(source)

        for copy in self.preplan.copies:
            source = copy.source.resolve()
            if source == pkg or _within(pkg, source):
                for child in sorted(pkg.iterdir()):
                    if child.is_dir() and _data_folder(child) and not any(_within(c, child) for c in code):
                        add(child, f"{APP}/{child.name}", app)
                continue
            if _within(source, pkg):
                if any(_within(source, c) for c in code) or _metadata(source):
                    continue
                rel = source.relative_to(pkg).as_posix()
                if rel.split("/")[0] in SKIPPED_DIRS:
                    continue
                if copy.dest == rel or copy.dest.endswith("/" + rel):
                    add(source, f"{APP}/{rel}", app)
                else:
                    add(source, copy.dest, other)
                continue
            if _metadata(source) or source in local_folders or any(_within(source, f) for f in local_folders):
                continue
            if _within(source, packages_dir) and source != packages_dir:
                owner = source.relative_to(packages_dir).parts[0]
                self.notes.append(
                    f"{copy.where} copies packages/{owner}, which {self.facts.pkg.distribution} does not "
                    "depend on: left out"
                )
                continue
            if source == self.context or _within(self.context, source):
                continue  # the whole context: the code and data above are what the service needs
            workdir = copy.workdir.rstrip("/") + "/"
            if (copy.dest + "/").startswith(workdir) and copy.dest != copy.workdir:
                add(source, f"{APP}/{copy.dest[len(workdir) :]}", app)
            else:
                add(source, copy.dest, other)
        for dest, source in app.items():
            self.notes.append(f"package data {source} copied to {dest}")
        for dest, source in other.items():
            self.notes.append(f"package data {source} copied to {dest}")
        return sorted((s, d) for d, s in app.items()), sorted((s, d) for d, s in other.items())

    def note_system_packages(self, build_packages: tuple[str, ...]) -> None:
        if self.preplan is None or not self.preplan.system_packages or build_packages:
            return
        managers: dict[str, list[str]] = {}
        for manager, package in self.preplan.system_packages:
            managers.setdefault(manager, []).append(package)
        listed = "; ".join(f"{m} {' '.join(p)}" for m, p in managers.items())
        self.notes.append(
            f"{self.preplan.path} installed system packages ({listed}); "
            "the runtime installs none: if a dependency has no wheel and needs a compiler, set "
            "sutra.dockerfiles.build_packages (Debian packages for the deps stage only)"
        )


# --- writing it -------------------------------------------------------------------------


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
    lines += ["", f"FROM ${{{build_arg}}} AS {stage}"]
    for source, dest in spec.local_copies:
        lines.append(f"COPY {source} {dest}")
    if installs:
        lines += _install(spec)
    for source, dest in (*spec.code_copies, *spec.app_data):
        lines.append(f"COPY {source} {dest}")
    if installs:
        lines += [
            "# Byte-compile ahead of time: the runtime user cannot write __pycache__. unchecked-hash",
            "# pycs stay valid whatever mtimes COPY gives the sources (-f replaces pip's timestamp pycs).",
        ]
    else:
        lines += [
            "# The runtime user cannot write __pycache__, so compile here; unchecked-hash pycs stay",
            "# valid whatever mtimes COPY gives the sources.",
        ]
    compiled = f"{APP} {SITE}" if installs else APP
    lines += [
        f"RUN python3 -m compileall -q -f -j 0 --invalidation-mode unchecked-hash {compiled}",
        "",
        f"FROM ${{{runtime_arg}}}",
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
    own = {**_OWN_ENV, "PYTHONPATH": f"{SITE}:{APP}" if installs else APP}
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
    if spec.constraints:
        lines.append(
            f"# Constraints: the pre-plan image pinned these tighter than {Path(spec.declared_in).name}."
        )
        lines += [f"#   {constraint} ({why})" for constraint, why in spec.constraints]
    steps: list[list[str]] = []
    if spec.build_packages:
        steps += [
            ["apt-get update"],
            ["apt-get install -y --no-install-recommends " + " ".join(spec.build_packages)],
            ["rm -rf /var/lib/apt/lists/*"],
        ]
    steps.append(
        [
            "printf '%s\\n' \\",
            *[f"    {shlex.quote(r)} \\" for r in spec.requirements],
            "    > /tmp/requirements.txt",
        ]
    )
    install = "python3 -m pip install --no-cache-dir --disable-pip-version-check \\"
    target = f"    --target {SITE} -r /tmp/requirements.txt"
    if spec.constraints:
        steps.append(
            [
                "printf '%s\\n' \\",
                *[f"    {shlex.quote(c)} \\" for c, _ in spec.constraints],
                "    > /tmp/constraints.txt",
            ]
        )
        target += " -c /tmp/constraints.txt"
    steps.append([install, target])
    steps.append([f"rm -rf {SITE}/bin"])
    out: list[str] = []
    for index, step in enumerate(steps):
        first, *more = step
        prefix = "RUN " if index == 0 else "    && "
        out.append(prefix + first)
        out += ["    " + line for line in more]
    for index in range(len(out) - 1):
        if not out[index].endswith("\\"):
            out[index] += " \\"
    return lines + out


def health_probe(health: HealthCheck, port: int, timeout: str) -> list[str]:
    """The HEALTHCHECK command: python3 alone, no shell and no curl."""
    seconds = _seconds(timeout) or 3
    limit = f"{seconds:g}"
    if health.protocol == "tcp":
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout={limit}).close()"
    else:
        url = f"http://127.0.0.1:{port}{health.path}"
        code = f"import urllib.request; urllib.request.urlopen('{url}', timeout={limit})"
    return ["python3", "-c", code]


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


def _script_call(target: str) -> list[str]:
    """`module:function` as the console script's wrapper runs it."""
    module, _, attribute = target.partition(":")
    attribute = attribute.split("[")[0].strip()
    head = attribute.split(".")[0]
    return ["python3", "-c", f"import sys; from {module.strip()} import {head}; sys.exit({attribute}())"]


def _without_init(argv: list[str]) -> tuple[list[str], int]:
    """`tini -- cmd`, `dumb-init cmd`: the runtime has no init wrapper; Docker's --init is one."""
    if not argv or posixpath.basename(argv[0]) not in _INIT_WRAPPERS:
        return argv, 0
    rest = argv[1:]
    drop = (
        rest.index("--") + 1
        if "--" in rest
        else next((i for i, w in enumerate(rest) if not w.startswith("-")), len(rest))
    )
    return rest[drop:], 1 + drop


def _is_python(name: str) -> bool:
    """python, python3, python3.11."""
    version = name.removeprefix("python")
    return name.startswith("python") and (not version or version.replace(".", "").isdigit())


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _seconds(duration: str) -> float | None:
    """A Docker duration (`30s`, `1m30s`, `500ms`) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    total, number, index = 0.0, "", 0
    text = duration.strip()
    if not text:
        return None
    while index < len(text):
        char = text[index]
        if char.isdigit() or char == ".":
            number += char
            index += 1
            continue
        unit = next((u for u in ("ms", "us", "ns", "h", "m", "s") if text.startswith(u, index)), None)
        if unit is None or not number:
            return None
        try:
            total += float(number) * units[unit]
        except ValueError:
            return None
        number, index = "", index + len(unit)
    return None if number else total


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _metadata(path: Path) -> bool:
    name = path.name
    return name in _METADATA_FILES or name.startswith(_METADATA_PREFIXES) or name.endswith(".md")


def _data_folder(folder: Path) -> bool:
    name = folder.name
    return not (
        name.startswith(".")
        or name in SKIPPED_DIRS
        or name.endswith(".egg-info")
        or name in ("docs", "doc", "src")
    )


__all__ = ["ImageSpec", "Inputs", "health_probe", "plan_image", "render"]
