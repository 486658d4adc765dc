"""`inv init`: a stack file for a checkout, from what its files say (the `skaffold init` /
`docker init` pattern). Nothing is built or run.

Per service package (each folder under ``packages/``, or at the top when there is none, that
holds a Dockerfile or Python package metadata), whatever its language:

- its Dockerfiles: ``Dockerfile`` (v1) and ``Dockerfile.optimized`` (v2, which
  `inv dockerfiles --write` makes when it is missing); the build context is the checkout when
  the Dockerfile copies paths from it (``COPY packages/…``), else the package;
- the port it really listens on: the server's own command line (``--port``, ``--bind``, ``-p``
  in CMD/ENTRYPOINT), else the code (``uvicorn.run(port=…)``, a settings default), else EXPOSE,
  else the compose file; every other source that disagrees is a finding;
- its health check: a route the app declares (``/health``, ``/healthz``, ``/ping``, …), else
  the path the pre-plan HEALTHCHECK or the compose file probes; TCP for a service with no HTTP
  route to probe; a probed path that is no route of the app is a finding;
- the environment variables its code reads (:mod:`.code`);
- the plan's size budget where the service's name matches one the plan gives.

The journey is proposed from the routes of one service: one that stores (learn, facts, store,
ingest, …) and one that finds (query, search, find, …); init cannot read request and response
models, so it says which parts to check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..core.errors import DockerfileSyntaxError, NotACheckout
from ..core.findings import Finding
from ..core.stack import Service, Stack
from ..core.units import MB
from ..images.dockerfiles.parse import Dockerfile, env_pairs, expand, read_dockerfile
from .code import CodeFacts, Located, read_code

HEALTH_ROUTES = ("/health", "/healthz", "/ping", "/ready", "/readyz", "/livez", "/status")
LEARN_WORDS = ("learn", "facts", "fact", "store", "ingest", "remember", "documents", "items")
FIND_WORDS = ("query", "search", "find", "ask", "recall", "lookup")
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_URL_PATH = re.compile(r"https?://[^/\s'\"]+(/[^\s'\"]*)?")
_PORT_FLAGS = ("--port", "-p", "--listen-port")
_PEER_ADDRESS = re.compile(r"\b([a-z0-9][a-z0-9-]*):[0-9]{1,5}\b")
_BIND_FLAGS = ("--bind", "-b", "--host-port")
PLACEHOLDER_MB = 1000


@dataclass
class ServiceGuess:
    name: str
    folder: str  # the package, relative to the root
    image: str
    context: str
    dockerfiles: dict[str, str]
    port: int | None
    host_port: int | None
    health: tuple[str, str | None]  # ("http", path) or ("tcp", None)
    reads: list[str]  # what its code reads (empty for code init cannot read)
    environment: dict[str, str]  # what it is given; {service} for a peer's address
    budget: tuple[float, float, float] | None
    python: bool
    routes: CodeFacts = field(default_factory=CodeFacts)
    data: str | None = None  # the folder it keeps its data in (a volume), or None


@dataclass
class Described:
    stack_name: str
    services: list[ServiceGuess]
    public_api: str
    journey: str | None  # TOML text of [journey], or None
    findings: list[Finding]


def describe(root: Path, reference: Stack) -> Described:
    """What ``root`` holds, as a stack; :class:`NotACheckout` when it holds no service package."""
    if not root.is_dir():
        raise NotACheckout(f"{root} is not a directory")
    findings: list[Finding] = []
    compose = read_compose(root, findings)
    folders = service_folders(root)
    if not folders:
        raise NotACheckout(
            f"{root} is no checkout: no service package under packages/ or at the top "
            "(a folder with a Dockerfile, pyproject.toml or setup.py)"
        )
    services = [guess_service(root, folder, compose, reference, findings) for folder in folders]
    assign_host_ports(services)
    peers_from_code_defaults(services)
    public, journey = propose_journey(services, findings)
    return Described(root.name or "stack", services, public, journey, findings)


def service_folders(root: Path) -> list[Path]:
    base = root / "packages" if (root / "packages").is_dir() else root
    found = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name in ("node_modules", "build", "dist") or folder.name.endswith(".egg-info"):
            continue
        if any((folder / name).is_file() for name in ("Dockerfile", "pyproject.toml", "setup.py")):
            found.append(folder)
    return found


# --- compose -----------------------------------------------------------------------------


@dataclass
class ComposeService:
    name: str
    where: str
    context: str | None
    dockerfile: str | None
    image: str | None
    ports: list[tuple[int | None, int]]  # (host, container)
    health_path: str | None
    environment: list[str]
    values: dict[str, str]  # what it sets, as written
    volumes: list[str] = field(default_factory=list)  # container paths it mounts something on


def read_compose(root: Path, findings: list[Finding]) -> list[ComposeService]:
    for name in COMPOSE_FILES:
        path = root / name
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as error:
            findings.append(Finding(name, f"not read: {error}"))
            return []
        services = data.get("services") if isinstance(data, dict) else None
        return [
            _compose_service(name, key, value)
            for key, value in (services or {}).items()
            if isinstance(value, dict)
        ]
    return []


def _compose_service(file: str, name: str, raw: dict) -> ComposeService:
    build = raw.get("build")
    table = build if isinstance(build, dict) else {}
    context = build if isinstance(build, str) else table.get("context")
    dockerfile = table.get("dockerfile")
    ports = []
    for entry in raw.get("ports") or []:
        text = str(entry.get("target") if isinstance(entry, dict) else entry).split("/")[0]
        parts = text.split(":")
        try:
            container = int(parts[-1])
            host = int(parts[-2]) if len(parts) >= 2 else None
        except ValueError:
            continue
        ports.append((host, container))
    test = (raw.get("healthcheck") or {}).get("test")
    text = " ".join(test) if isinstance(test, list) else str(test or "")
    match = _URL_PATH.search(text)
    env = raw.get("environment") or {}
    pairs = env.items() if isinstance(env, dict) else (str(e).partition("=")[::2] for e in env)
    values = {str(k): "" if v is None else str(v) for k, v in pairs}
    names = list(values)
    image = raw.get("image")
    mounted = [m for m in map(_data_volume, raw.get("volumes") or []) if m is not None]
    # Named volumes first: an anonymous one is more often scratch space than the data.
    volumes = [target for source, target in sorted(mounted, key=lambda m: m[0] is None)]
    return ComposeService(
        name=name,
        where=f"{file} (services.{name})",
        context=_norm(context),
        dockerfile=dockerfile,
        image=image if isinstance(image, str) else None,
        ports=ports,
        health_path=(match.group(1) or "/") if match else None,
        environment=names,
        values=values,
        volumes=volumes,
    )


# What may follow a short-syntax volume's target (`data:/var/lib/data:ro,z`).
_MOUNT_OPTIONS = {"ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy"}
_HOST_PATH = re.compile(r"^(?:[./~$]|[A-Za-z]:[\\/])")  # ./x, /x, ~/x, ${X}, C:\x, C:/x


def _data_volume(entry: object) -> tuple[str | None, str] | None:
    """(volume name, or None when anonymous; the container path) for a writable volume the
    compose file gives a service; None for a bind mount of a host path (code, a config file,
    the docker socket), a tmpfs, or a read-only mount: none of those is where it keeps data."""
    if isinstance(entry, dict):
        if entry.get("type", "volume") != "volume" or entry.get("read_only"):
            return None
        source, target = entry.get("source"), entry.get("target")
    else:
        parts = str(entry).split(":")
        options = parts[-1].split(",") if len(parts) > 1 else []
        if options and all(option in _MOUNT_OPTIONS for option in options):
            if "ro" in options:
                return None
            parts = parts[:-1]
        source, target = ":".join(parts[:-1]) or None, parts[-1]
    if not isinstance(target, str) or not target.startswith("/"):
        return None
    if source is not None and (not isinstance(source, str) or _HOST_PATH.match(source)):
        return None
    return source, target


def _norm(path: str | None) -> str | None:
    if path is None:
        return None
    text = str(path).strip()
    while text.startswith("./"):
        text = text[2:]
    return text.rstrip("/") or "."


# --- one service ---------------------------------------------------------------------------


def guess_service(
    root: Path, folder: Path, compose: list[ComposeService], reference: Stack, findings: list[Finding]
) -> ServiceGuess:
    rel = folder.relative_to(root).as_posix()
    dockerfile = _read(root, folder / "Dockerfile", findings)
    mine = _compose_for(rel, compose)
    # The compose file's name for it; else the plan's, when the folder is one the plan names
    # (packages/sutra-storage is its storage-server: the name the manifests know); else the folder's.
    planned = _plan_service(folder.name, folder.name, reference)
    name = mine.name if mine else planned.name if planned else folder.name
    python = any((folder / n).is_file() for n in ("pyproject.toml", "setup.py"))
    code = read_code(folder, root) if python else CodeFacts()
    optimized = _read(root, folder / "Dockerfile.optimized", findings)
    context = "." if "." in (_context(dockerfile, rel), _context(optimized, rel)) else rel
    dockerfiles = {"v1": f"{rel}/Dockerfile", "v2": f"{rel}/Dockerfile.optimized"}
    if not (folder / "Dockerfile.optimized").is_file():
        if python:
            findings.append(
                Finding(f"{rel}/Dockerfile.optimized", "missing; `inv dockerfiles --write` writes it")
            )
        else:  # a Rust server or a static client: its own Dockerfile serves both versions
            dockerfiles["v2"] = dockerfiles["v1"]
    port = _port(name, rel, dockerfile, code, mine, findings)
    health = _health(name, rel, dockerfile, code, mine, port, findings)
    budget = _budget(name, folder.name, reference)
    if budget is None:
        findings.append(
            Finding(
                rel, f"the plan gives {name} no size budget: size_mb is a placeholder ({PLACEHOLDER_MB} MB)"
            )
        )
    reads = sorted({str(e.value) for e in code.env})
    environment = _environment(name, reads, mine, findings)
    named = mine.image.split(":")[0].rsplit("/", 1)[-1] if mine and mine.image else None
    image = named or _image(name, reference)
    return ServiceGuess(
        name=name, folder=rel, image=image, context=context, dockerfiles=dockerfiles, port=port,
        host_port=next((h for h, _ in (mine.ports if mine else []) if h), None),  # where people reach it
        health=health, reads=reads, environment=environment, budget=budget, python=python, routes=code,
        data=_data(mine, optimized or dockerfile),
    )  # fmt: skip


def _data(mine: ComposeService | None, dockerfile: Dockerfile | None) -> str | None:
    """The folder the service keeps its data in: where the compose file mounts a volume, else
    the final image's VOLUME. Locally it gets a named volume there, so its data outlives the
    container (and verify checks that it does)."""
    if mine and mine.volumes:
        return mine.volumes[0]
    final = dockerfile.final if dockerfile else None
    if dockerfile is None or final is None:
        return None
    # `VOLUME $DATA_DIR`: filled as a build fills it. An ARG lives in its stage (a global one's
    # default reaches a stage that declares it again); an ENV also in the stages built on it.
    global_args = dict(
        (name, value)
        for instruction in dockerfile.instructions
        if instruction.stage == -1 and instruction.keyword == "ARG"
        for name, _, value in (word.partition("=") for word in instruction.words())
    )
    env: dict[str, str] = {}
    for stage in dockerfile.chain(final):
        args: dict[str, str] = {}
        for instruction in stage.instructions:
            if instruction.keyword == "ARG":
                for name, sep, value in (word.partition("=") for word in instruction.words()):
                    args[name] = expand(value, {**args, **env}) if sep else global_args.get(name, "")
            elif instruction.keyword == "ENV":
                for name, value in env_pairs(instruction):
                    env[name] = expand(value, {**args, **env})
            elif instruction.keyword == "VOLUME":
                words = (expand(word, {**args, **env}) for word in instruction.words())
                paths = [path for path in words if path.startswith("/")]
                if paths:
                    return paths[0]
    return None


def _environment(
    name: str, reads: list[str], mine: ComposeService | None, findings: list[Finding]
) -> dict[str, str]:
    """What the compose file gives the service, less what its code never reads (a finding);
    a peer's address (`storage-server:50051`) becomes `{storage-server}`, resolved where the
    stack runs. For code init cannot read, the compose file's environment as it is."""
    given = dict(mine.values) if mine else {}
    out = {}
    for variable, value in given.items():
        if reads and variable not in reads:
            findings.append(Finding(mine.where, f"sets {variable}, which {name}'s code never reads"))
            continue
        out[variable] = _PEER_ADDRESS.sub(lambda m: "{" + m.group(1) + "}", value)
    return out


def peers_from_code_defaults(services: list[ServiceGuess]) -> None:
    """A variable the code reads whose default there is a peer's address
    (`os.getenv("STORAGE_URL", "http://storage-server:50051")`), and which the compose file does
    not set, is given that address as `{storage-server}`: so it follows the peer's port where
    the stack runs, instead of the code's guess."""
    names = {s.name for s in services}
    for service in services:
        for variable, default in service.routes.env_defaults:  # `routes`: all its code facts
            if variable in service.environment or not isinstance(default.value, str):
                continue
            hosts = {m.group(1) for m in _PEER_ADDRESS.finditer(default.value)}
            if hosts and hosts <= names - {service.name}:
                service.environment[variable] = _PEER_ADDRESS.sub(
                    lambda m: "{" + m.group(1) + "}", default.value
                )


def _read(root: Path, path: Path, findings: list[Finding]) -> Dockerfile | None:
    if not path.is_file():
        return None
    try:
        return read_dockerfile(path, path.relative_to(root).as_posix())
    except (DockerfileSyntaxError, OSError, UnicodeDecodeError) as error:
        findings.append(Finding(path.relative_to(root).as_posix(), f"not read: {error}"))
        return None


def _compose_for(rel: str, compose: list[ComposeService]) -> ComposeService | None:
    for service in compose:
        if service.context == rel or (service.dockerfile and _norm(service.dockerfile).startswith(rel + "/")):
            return service
        if service.context == "." and service.dockerfile and rel in service.dockerfile:
            return service
    return None


def _context(dockerfile: Dockerfile | None, rel: str) -> str:
    """The checkout when the Dockerfile copies from it by path, else the package folder."""
    if dockerfile is None:
        return rel
    top = rel.split("/")[0] + "/"
    for instruction in dockerfile.instructions:
        if instruction.keyword in ("COPY", "ADD") and instruction.flag("from") is None:
            sources = instruction.words()[:-1]
            if any(_norm(s).startswith((top, rel + "/")) or _norm(s) == rel for s in sources):
                return "."
    return rel


def _command_port(dockerfile: Dockerfile | None) -> Located | None:
    if dockerfile is None or dockerfile.final is None:
        return None
    for instruction in reversed(dockerfile.instructions):
        if instruction.keyword not in ("CMD", "ENTRYPOINT") or instruction.stage != dockerfile.final.index:
            continue
        words = instruction.words()
        for i, word in enumerate(words):
            flag, _, inline = word.partition("=")
            value = inline if inline else words[i + 1] if i + 1 < len(words) else ""
            if flag in _PORT_FLAGS and value.isdigit():
                return Located(int(value), dockerfile.where(instruction))
            if flag in _BIND_FLAGS and value.rpartition(":")[2].isdigit():
                return Located(int(value.rpartition(":")[2]), dockerfile.where(instruction))
    return None


def _expose(dockerfile: Dockerfile | None) -> Located | None:
    if dockerfile is None:
        return None
    for instruction in dockerfile.instructions:
        if instruction.keyword == "EXPOSE":
            for word in instruction.words():
                number = word.split("/")[0]
                if number.isdigit():
                    return Located(int(number), dockerfile.where(instruction))
    return None


def _port(
    name: str, rel: str, dockerfile, code: CodeFacts, mine: ComposeService | None, findings: list[Finding]
) -> int | None:
    sources: list[tuple[str, Located]] = []
    command = _command_port(dockerfile)
    runs_module = _runs_module(dockerfile)
    if command is not None:
        sources.append(("the server's command line", command))
    # The code's port counts first when the command starts the code's own __main__.
    # A server started in the code says where it listens; a settings default only may.
    code_ports = [("the code", p) for p in code.ports] + [("its settings", p) for p in code.setting_ports]
    sources = (code_ports + sources) if runs_module and command is None else (sources + code_ports)
    exposed = _expose(dockerfile)
    if exposed is not None:
        sources.append(("EXPOSE", exposed))
    if mine is not None:
        sources += [("the compose file", Located(c, mine.where)) for _, c in mine.ports]
    if not sources:
        findings.append(Finding(rel, f"no port found for {name}: set services.{name}.port"))
        return None
    chosen_from, chosen = sources[0]
    for what, other in sources[1:]:
        if other.value != chosen.value:
            findings.append(
                Finding(other.where, f"{what} says port {other.value}, but {name} listens on {chosen.value} "
                        f"({chosen_from}, {chosen.where})")
            )  # fmt: skip
    return int(chosen.value)


def _runs_module(dockerfile: Dockerfile | None) -> bool:
    if dockerfile is None:
        return False
    for instruction in dockerfile.instructions:
        if instruction.keyword in ("CMD", "ENTRYPOINT"):
            words = instruction.words()
            if "-m" in words and "uvicorn" not in words and "gunicorn" not in words:
                return True
    return False


def _healthcheck_path(dockerfile: Dockerfile | None) -> Located | None:
    if dockerfile is None:
        return None
    for instruction in dockerfile.instructions:
        if instruction.keyword == "HEALTHCHECK":
            match = _URL_PATH.search(instruction.arguments)
            if match:
                return Located(match.group(1) or "/", dockerfile.where(instruction))
    return None


def _health(name, rel, dockerfile, code: CodeFacts, mine, port, findings) -> tuple[str, str | None]:
    routes = code.route_paths("GET")
    probed = _healthcheck_path(dockerfile)
    if probed is None and mine is not None and mine.health_path:
        probed = Located(mine.health_path, mine.where)
    chosen = str(probed.value) if probed is not None and probed.value in routes else None
    chosen = chosen or next((path for path in HEALTH_ROUTES if path in routes), None)
    if routes and probed is not None and probed.value not in routes:
        findings.append(
            Finding(probed.where, f"probes {probed.value}, which is no route of {name}'s app "
                    f"(its GET routes: {', '.join(sorted(set(routes)))})")
        )  # fmt: skip
    if chosen is None and probed is not None and (not routes or probed.value in routes):
        chosen = str(probed.value)
    if chosen is None and "/" in routes:
        chosen = "/"
    if chosen is None:
        if routes:
            findings.append(
                Finding(rel, f"{name}: no health route among {', '.join(routes)}; checked by TCP")
            )
        return ("tcp", None)
    return ("http", chosen)


def _plan_service(name: str, folder: str, reference: Stack) -> Service | None:
    """The plan's service this one is: by its name, or by its folder."""
    for service in reference.services:
        if name in (service.name, service.image) or folder in (
            service.name,
            service.image,
            service.context.split("/")[-1],
        ):
            return service
    return None


def _budget(name: str, folder: str, reference: Stack) -> tuple[float, float, float] | None:
    service = _plan_service(name, folder, reference)
    if service is None:
        return None
    b = service.budget
    return (b.old_bytes / MB, b.target_bytes / MB, b.limit_bytes / MB)


def _image(name: str, reference: Stack) -> str:
    for service in reference.services:
        if service.name == name:
            return service.image
    return name


def assign_host_ports(services: list[ServiceGuess]) -> None:
    """The compose file's host port, else the container port, moved up past a taken one."""
    taken: set[int] = set()
    for service in services:
        wanted = service.host_port or service.port or 8000
        while wanted in taken:
            wanted += 1
        service.host_port = wanted
        taken.add(wanted)


# --- the journey ---------------------------------------------------------------------------


def propose_journey(services: list[ServiceGuess], findings: list[Finding]) -> tuple[str, str | None]:
    for service in services:
        routes = service.routes.routes
        learn = next((p for m, p in routes if m in ("POST", "PUT") and _has(p.value, LEARN_WORDS)), None)
        find = next((p for m, p in routes if m in ("POST", "GET") and _has(p.value, FIND_WORDS)), None)
        if learn is None or find is None:
            continue
        method = next(m for m, p in routes if p is find)
        learn_method = next(m for m, p in routes if p is learn)
        find_path = f"{find.value}?q={{marker}}" if method == "GET" else str(find.value)
        body = "" if method == "GET" else '\nbody = { query = "journey fact {marker}" }'
        findings.append(
            Finding(learn.where, f"journey proposed from {learn_method} {learn.value} and {method} "
                    f"{find.value} ({find.where}): check its bodies, `id` and `found` against the API")
        )  # fmt: skip
        text = (
            "[journey.learn]\n"
            f'service = "{service.name}"\nmethod = "{learn_method}"\npath = "{learn.value}"\n'
            'body = { content = "journey fact {marker}" }\nid = "/id"\n\n'
            "[journey.find]\n"
            f'service = "{service.name}"\nmethod = "{method}"\npath = "{find_path}"{body}\n'
            'found = { list = "/results", match = "/id", equals = "{id}" }\n'
        )
        return service.name, text
    http = next((s.name for s in services if s.health[0] == "http"), services[0].name)
    findings.append(
        Finding("journey", "could not propose one: no service declares a route that stores and one that "
                "finds; smoke will check health only until [journey] is written (README, The stack file)")
    )  # fmt: skip
    return http, None


def _has(path: object, words: Iterable[str]) -> bool:
    parts = re.split(r"[/_\-.]", str(path).lower())
    return any(word in parts for word in words)
