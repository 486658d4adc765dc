"""Every `sutra.*` setting's default, in one place: `tasks.py` hands them to `ns.configure`,
and the libraries that read a group of settings merge over them."""

from __future__ import annotations

from typing import Any

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
# traceback that no task can catch (and `tasks.py` cannot reach Invoke's Executor or Config: the
# loader copies `ns` into a plain Collection). Text passes through uncast, and `inputs.number`
# converts and checks it where it is read, one line naming the setting (`nan`, `inf`, 0 and
# negatives too). Lists cannot come from a variable at all (Invoke's `UncastableEnvVar`).
DEFAULTS: dict[str, Any] = {
    "sutra": {
        "stack_file": str(REFERENCE_STACK_FILE),
        "root": None,  # SUTRA_ROOT, then the reference implementation
        "bases": "auto",  # auto | local | official
        "builder": "auto",  # auto (BuildKit when the CLI has buildx, else legacy) | buildkit | legacy
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
