"""Every `sutra.*` setting's default, in one place: `tasks.py` hands them to `ns.configure`,
and the libraries that read a group of settings merge over them."""

from __future__ import annotations

from typing import Any

from .errors import SutraError
from .source import PROJECT_DIR, REFERENCE_STACK_FILE
from .units import GB, MB

# `inv sizes --cost`: the plan's "Before Optimization" figures, which the default rates
# reproduce (images/cost.py says how each rate follows from them).
PLAN_BEFORE_MB = 1604
PLAN_PULL_SECONDS = 5 * 60
PLAN_PULLS_PER_MONTH = 1000
PLAN_TRANSFER_DOLLARS_PER_MONTH = 144
PLAN_STORAGE_DOLLARS_PER_MONTH = 15

PLAN_COST_RATES = {
    "pull_megabytes_per_second": round(PLAN_BEFORE_MB / PLAN_PULL_SECONDS, 3),
    "transfer_dollars_per_gb": round(
        PLAN_TRANSFER_DOLLARS_PER_MONTH / (PLAN_PULLS_PER_MONTH * PLAN_BEFORE_MB * MB / GB), 4
    ),
    "pulls_per_month": PLAN_PULLS_PER_MONTH,
    "storage_dollars_per_gb_month": round(PLAN_STORAGE_DOLLARS_PER_MONTH / (PLAN_BEFORE_MB * MB / GB), 3),
}


# Defaults for `ns.configure`; invoke.yaml, INVOKE_SUTRA_* variables and flags override them.
# Numbers that a variable may set are written as text. Invoke reads INVOKE_SUTRA_X by casting it
# to the type of X's default (invoke/env.py `Environment._cast`: `int("abc")` for
# INVOKE_SUTRA_JOBS=abc) in `Executor.execute`, before any task runs, so a failed cast is a
# traceback that no task can catch. Text passes through uncast, and `inputs.number`
# converts and checks it where it is read, one line naming the setting (`nan`, `inf`, 0 and
# negatives too). Lists and yes/no settings are read from variables by `setting_from_variable`
# (below), which `edge.guard_invoke_settings` puts in place of Invoke's cast.
DEFAULTS: dict[str, Any] = {
    "sutra": {
        "stack_file": str(REFERENCE_STACK_FILE),
        "root": None,  # SUTRA_ROOT, then the reference implementation
        "bases": "auto",  # auto | local | official
        "builder": "auto",  # auto (BuildKit when the CLI has buildx, else legacy) | buildkit | legacy
        # Images built at once: auto is every image under BuildKit (it schedules the steps
        # itself, and a build waiting on a download leaves the cores to the others) and the
        # CPU count under the legacy builder (each build's steps run one after another).
        "jobs": "auto",
        # The tags that move to each release a push or deploy ships ("{version}" is v2, v1).
        "floating_tags": ["{version}", "latest"],
        "ca_bundle": "/etc/ssl/certs/ca-certificates.crt",  # the build stages' trust store
        # Certificates added to Debian's set in the runtime images (a site's internal CA);
        # the build machine's store never reaches them.
        "runtime_ca_bundle": None,
        "project": "sutra",  # compose project name of the local stack
        # A process that owns the local stack (the integration tests' own pid): its containers
        # carry owner labels, and `inv cleanup` removes the project once that process is gone.
        "owner_pid": None,
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
        # `inv dockerfiles`: what the generated Dockerfiles are made with. Read once into
        # `images.dockerfiles.model.DockerfileSettings`.
        "dockerfiles": {
            # `build_packages` (none by default): Debian packages the deps stage installs before
            # pip, for dependencies that have no wheel for the platform (a compiler, headers): a
            # list for every service, or a table of service -> list. They never reach the
            # runtime image. It has no default here because it takes either form: Invoke cannot
            # merge a table over a default that is a list (AmbiguousMergeError), nor the reverse.
            # Console scripts a pre-plan CMD runs that also run as `python3 -m MODULE`.
            "script_modules": {},
            # The [base_images] keys of the build image (pip, compileall) and the runtime image.
            "build_base": "python",
            "runtime_base": "python-runtime",
            # A lock file (relative to the source root) whose exact pins every deps stage
            # installs with (pip constraints); "" for none. `inv dockerfiles --lock FILE` too.
            "lock": "",
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


# --- settings as Invoke reads them: variables and files ---------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def variable_name(key_path: list[str] | tuple[str, ...]) -> str:
    return "INVOKE_" + "_".join(key.upper() for key in key_path)


def setting_from_variable(key_path: list[str] | tuple[str, ...], default: Any, text: str) -> Any:
    """An INVOKE_* variable's text as the setting it sets, by the kind of the setting's default.
    Invoke itself cannot read a list from a variable (a traceback before any task runs) and
    reads any text but "0" and "" as true; here a list is comma-separated (`50,80`, `latest`),
    a yes/no is true/false/yes/no/on/off/1/0, and anything else is one line naming the variable."""
    name = variable_name(key_path)
    shown = text if len(text) <= 80 else text[:77] + "..."
    if isinstance(default, bool):
        word = text.strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise SutraError(f"{name}={shown!r}: expected true or false (or yes/no, on/off, 1/0)")
    if isinstance(default, (list, tuple)):
        items = [item.strip() for item in text.split(",") if item.strip()]
        if default and all(isinstance(d, int) and not isinstance(d, bool) for d in default):
            try:
                return [int(item) for item in items]
            except ValueError:
                example = ",".join(map(str, default))
                raise SutraError(
                    f"{name}={shown!r}: expected whole numbers separated by commas, e.g. {example}"
                ) from None
        return items
    if default is None or isinstance(default, str):
        return text
    try:
        return type(default)(text)
    except (TypeError, ValueError):
        raise SutraError(f"{name}={shown!r}: expected {type(default).__name__}, like {default!r}") from None


def shape_problem(default: Any, given: Any, path: str) -> str | None:
    """Where ``given`` (a settings file's data) has a table where the default has a value, or a
    value where it has a table, as one line (`sutra.environments.staging: expected a table
    of settings, got 'oops'`); None when the shapes agree. Invoke cannot merge such files."""
    if isinstance(default, dict) and isinstance(given, dict):
        for key, value in given.items():
            if key in default:
                found = shape_problem(default[key], value, f"{path}.{key}" if path else str(key))
                if found:
                    return found
        return None
    if isinstance(default, dict) != isinstance(given, dict):
        shown = repr(given) if len(repr(given)) <= 60 else repr(given)[:57] + "..."
        if isinstance(default, dict):
            keys = sorted(map(str, default))
            listed = ", ".join(keys[:6]) + (", …" if len(keys) > 6 else "")
            return f"{path}: expected a table of settings ({listed}), got {shown}"
        return f"{path}: expected a value, like {default!r}, got a table"
    return None
