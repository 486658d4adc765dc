"""The task edge: what every Invoke task shares (settings, the stack, error translation)."""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from invoke import Context
from invoke.exceptions import Exit, UnexpectedExit

from .commands import Commands
from .cost import PLAN_DEFAULTS as PLAN_COST_RATES
from .engine import Engine
from .errors import StackFileError, SutraError
from .inputs import number
from .source import PROJECT_DIR, resolve_source_root
from .stack import Stack, load_stack

if TYPE_CHECKING:
    from . import k8s
    from .local import LocalStack
    from .release import Release

log = logging.getLogger("sutra")

# Defaults for `ns.configure`; invoke.yaml, INVOKE_SUTRA_* variables and flags override them.
# Numbers that a variable may set are written as text. Invoke reads INVOKE_SUTRA_X by casting it
# to the type of X's default (invoke/env.py `Environment._cast`: `int("abc")` for
# INVOKE_SUTRA_JOBS=abc) in `Executor.execute`, before any task runs, so a failed cast is a
# traceback that no task can catch (and `tasks.py` cannot reach Invoke's Executor or Config: the
# loader copies `ns` into a plain Collection). Text passes through uncast, and `inputs.number`
# converts and checks it where it is read, one line naming the setting (`nan`, `inf`, 0 and
# negatives too). Lists cannot come from a variable at all (Invoke's `UncastableEnvVar`).
DEFAULTS: dict[str, Any] = {
    "sutra": {
        "stack_file": str(PROJECT_DIR / "stack.toml"),
        "root": None,  # SUTRA_ROOT, then the reference implementation
        "bases": "auto",  # auto | local | official
        "jobs": "2",  # images built at once
        # The tags that move to each release a push or deploy ships ("{version}" is v2, v1).
        "floating_tags": ["{version}", "latest"],
        "ca_bundle": "/etc/ssl/certs/ca-certificates.crt",  # the build stages' trust store
        # Certificates added to Debian's set in the runtime images (a site's internal CA);
        # the build machine's store never reaches them.
        "runtime_ca_bundle": None,
        "project": "sutra",  # compose project name of the local stack
        "compose_file": str(PROJECT_DIR / "compose" / "docker-compose.yml"),  # all versions, by SUTRA_TAG
        "local_timeout": "120",  # seconds for the local stack to become healthy
        "smoke_timeout": "30",  # seconds each smoke check may retry
        "kubectl": "kubectl",  # the tests point this at a recording stand-in
        # `inv sizes --cost`: the plan's implied rates
        "cost": {key: str(rate) for key, rate in PLAN_COST_RATES.items()},
        # fix-deps: what a service may declare without importing it (servers started by
        # name, and what they and FastAPI load at run time), import names that differ from
        # their distribution's (dotted prefixes allowed; extend in invoke.yaml), the plan's
        # specs for what it adds where code needs it, and the largest source file it reads.
        "deps": {
            "runtime_only": [
                "uvicorn",
                "gunicorn",
                "hypercorn",
                "daphne",
                # uvicorn[standard]: the loop, HTTP parser, websockets, reload and .env support
                "uvloop",
                "httptools",
                "websockets",
                "watchfiles",
                "python-dotenv",
                # FastAPI: form and file uploads, pydantic's EmailStr
                "python-multipart",
                "email-validator",
            ],
            "import_names": {
                "pydantic_settings": "pydantic-settings",
                "yaml": "PyYAML",
                "PIL": "Pillow",
                "sklearn": "scikit-learn",
                "skimage": "scikit-image",
                "cv2": "opencv-python",
                "google.protobuf": "protobuf",
                "grpc": "grpcio",
                "grpc_tools": "grpcio-tools",
                "grpc_health": "grpcio-health-checking",
                "bs4": "beautifulsoup4",
                "dateutil": "python-dateutil",
                "jwt": "PyJWT",
                "jose": "python-jose",
                "multipart": "python-multipart",
                "dotenv": "python-dotenv",
                "attr": "attrs",
                "magic": "python-magic",
                "docx": "python-docx",
                "Crypto": "pycryptodome",
                "OpenSSL": "pyOpenSSL",
                "zmq": "pyzmq",
                "serial": "pyserial",
                "MySQLdb": "mysqlclient",
                "git": "GitPython",
                "fitz": "PyMuPDF",
                "websocket": "websocket-client",
                "kafka": "kafka-python",
                "pkg_resources": "setuptools",
                "faiss": "faiss-cpu",
            },
            "known_specs": ["pydantic-settings>=2.0.0", "httpx>=0.25.0", "grpcio>=1.60.0"],
            # Bigger source files are generated data: parsing 50 MB takes a minute and gigabytes.
            "max_file_bytes": "5000000",
        },
        # `inv verify` (local and on a cluster) and the end of `inv deploy`: the plan's success
        # metrics (its targets) and the size of the local load, sized for a 2-core machine to
        # finish in about a minute. Read once into `verify.settings.VerifySettings`.
        "verify": {
            "requests": "600",
            "concurrency": "4",
            "pull_seconds": "180",  # image pull < 3 minutes
            "startup_seconds": "30",  # pod startup < 30 s
            "scale_up_seconds": "60",  # HPA scale-up < 60 s
            "hpa_sync_seconds": "15",  # the HPA controller's default sync period
            "memory_targets": {"sutra-api": "512Mi", "sutra-hybrid": "2Gi"},
            "cpu_utilization": [50, 80],  # percent of the CPU requested
            "cpu_gate": False,  # CPU utilisation is reported, and fails only when this is set
            "limits_from": "production",  # local: the environment whose manifests cap the containers
        },
        # Each Kubernetes environment: its overlay, the kube context it must be applied in,
        # the registry its images are pushed to and pulled from, and whether to ask first.
        "environments": {
            "staging": {
                "overlay": "k8s/overlays/staging",
                "context": "sutra-staging",
                "registry": "registry.example.com/sutra-ai",
                "confirm": False,
                "rollout_timeout": "300",
            },
            "production": {
                "overlay": "k8s/overlays/production",
                "context": "sutra-production",
                "registry": "registry.example.com/sutra-ai",
                "confirm": True,
                "rollout_timeout": "600",
            },
        },
    }
}

F = TypeVar("F", bound=Callable[..., Any])

INTERNAL_ERROR = 3  # exit code of a bug (README, "Exit codes"): not the user's input, not a check
DEBUG_ENV = "SUTRA_DEBUG"


def debugging() -> bool:
    """`inv --debug` (Invoke turns on debug logging for its own logger) or SUTRA_DEBUG=1."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0") or logging.getLogger("invoke").isEnabledFor(
        logging.DEBUG
    )


def one_line(error: BaseException) -> str:
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def user_errors(task_body: F) -> F:
    """Turn the library's typed errors into one line on stderr and a non-zero exit.

    Anything else is a bug: one line too, `internal error: …; please report`, and exit 3, never
    1 (a check that ran and failed) nor a traceback; `inv --debug` or SUTRA_DEBUG=1 shows it.
    """

    @functools.wraps(task_body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task_body(*args, **kwargs)
        except SutraError as error:
            raise Exit(f"error: {one_line(error)}", code=error.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None
        except BrokenPipeError:  # the reader went away (`inv sizes --json | head`)
            sys.stderr.close()
            raise Exit(code=141) from None
        except (Exit, UnexpectedExit):  # Invoke's own ways out, already meant for the user
            raise
        except Exception as error:
            if debugging():
                traceback.print_exc()
            message = f"internal error: {type(error).__name__}: {one_line(error)}; please report"
            raise Exit(message, code=INTERNAL_ERROR) from None

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Session:
    """What one `inv` invocation works with, made once at the edge and passed down.

    Everything here is cheap to make: the engine's client, kubectl and the local stack are
    made when a task first asks for them.
    """

    stack: Stack
    commands: Commands
    engine: Engine
    settings: dict[str, Any]

    @property
    def dry(self) -> bool:
        return self.commands.dry

    @functools.cached_property
    def kubectl(self) -> k8s.Kubectl:
        """This invocation's one kubectl wrapper (`sutra.kubectl` names the executable)."""
        from . import k8s

        return k8s.Kubectl(self.commands, str(self.settings["kubectl"]))

    def environment(
        self, name: str, *, registry: str | None = None, tag: str | None = None
    ) -> k8s.Environment:
        """The Kubernetes environment `sutra.environments.<name>`, with a flag's registry or tag."""
        from . import k8s

        return k8s.with_images(k8s.environment(self.settings, name), registry=registry, tag=tag)

    @property
    def compose_file(self) -> Path:
        return Path(self.settings["compose_file"])

    @functools.cached_property
    def local_stack(self) -> LocalStack:
        from .local import LocalStack

        file = Path(self.settings["compose_file"])
        return LocalStack(self.stack, self.engine, file, str(self.settings["project"]))

    def source_root(self, flag: str | None) -> Path:
        """`--root`, else `sutra.root`, else SUTRA_ROOT, else the reference implementation."""
        return resolve_source_root(flag or self.settings.get("root"))

    @property
    def ca_bundle(self) -> Path | None:
        value = self.settings.get("ca_bundle")
        return Path(value) if value else None

    @property
    def runtime_ca_bundle(self) -> Path | None:
        value = self.settings.get("runtime_ca_bundle")
        return Path(value) if value else None

    def release(self, tag: str | None, root: str | None, *, required: bool) -> Release | None:
        """`--tag`, else the git commit of the source root (see :mod:`.release`)."""
        from .release import resolve_release

        return resolve_release(
            self.commands, self.source_root(root), self.stack.versions, tag=tag, required=required
        )

    def floating_tags(self, version: str, *, latest: bool = True) -> list[str]:
        from .release import floating_tags

        return floating_tags(self.settings.get("floating_tags") or [], version, latest=latest)

    def jobs(self, flag: Any = None) -> int:
        return number(flag or self.settings["jobs"], "--jobs" if flag else "sutra.jobs", int)

    def seconds(self, flag: Any, setting: str) -> float:
        """A flag's timeout, else the setting's; positive either way."""
        return number(flag or self.settings[setting], "--timeout" if flag else f"sutra.{setting}")


_stacks: dict[Path, Stack] = {}


def session(c: Context) -> Session:
    settings = dict(c.config.get("sutra", {}))
    _configure_logging(verbose=bool(c.config.run.echo))
    try:
        path = Path(settings.get("stack_file") or DEFAULTS["sutra"]["stack_file"]).resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop, an unreadable folder
        raise StackFileError(f"{settings.get('stack_file')}: cannot be read ({error})") from None
    if path not in _stacks:  # tasks chained in one `inv` call share one loaded stack
        _stacks[path] = load_stack(path)
    commands = Commands(dry=bool(c.config.run.dry))
    return Session(_stacks[path], commands, Engine(commands), settings)


def _configure_logging(verbose: bool) -> None:
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
