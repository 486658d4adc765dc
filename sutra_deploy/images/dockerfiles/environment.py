"""The runtime's environment and port: what the pre-plan image's ENV set that the new image
keeps, replaces (what it sets itself; a port variable that names the old port) or leaves out
(credentials, build-time and user-site settings, the build machine's trust store and proxies,
values that refer to other variables, what the service's code never reads), and an EXPOSE that
stack.toml's port overrides.

A credential is left out before anything else is said about it, and no note shows its value:
the notes go to a terminal and a CI log. `check_carries_no_credential` then reads the whole
generated file, so no other way (a CMD argument, a requirement URL) carries one either."""

from __future__ import annotations

from ...core.credentials import credential, credential_in_value
from ...core.errors import DockerfileRefused
from .model import OWN_ENV, ImagePlanning
from .preplan import PrePlan

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
_DROPPED_ENV_PREFIXES = ("PIP_", "POETRY_", "PIPENV_", "UV_", "APK_", "APT_")
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

# What the interpreter, the server and the numeric libraries read, not the service's own code:
# kept whatever `reads` says (which lists what the code reads: `inv init` finds it there).
_RUNTIME_ENV_PREFIXES = (
    "PYTHON", "LANG", "LC_", "TZ", "UVICORN_", "GUNICORN_", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS",
    "MALLOC_", "OMP_", "OPENBLAS_", "MKL_", "NUMEXPR_", "GRPC_", "RUST_", "SSL_", "HF_", "TOKENIZERS_",
    "TRANSFORMERS_", "TORCH_", "CUDA_", "NVIDIA_",
)  # fmt: skip


def note_ports(plan: ImagePlanning) -> None:
    """The ports the pre-plan image EXPOSEd, when they are not stack.toml's."""
    port = plan.service.port.container
    if plan.preplan and plan.preplan.exposed and list(plan.preplan.exposed) != [port]:
        listed = " ".join(map(str, plan.preplan.exposed))
        plan.notes.append(f"{plan.preplan.path} EXPOSEs {listed}; stack.toml's port {port} wins")


def environment(plan: ImagePlanning) -> list[tuple[str, str]]:
    """The pre-plan image's ENV that the runtime keeps, in its order; what it does not, said."""
    if plan.preplan is None:
        return []
    kept, dropped, unread = [], [], []
    old_ports = {str(p) for p in plan.preplan.exposed}
    port = str(plan.service.port.container)
    for key, value in plan.preplan.env:
        why = credential(key, value)
        if why:
            where = plan.preplan.env_where.get(key, plan.preplan.path)
            plan.notes.append(
                f"ENV {key} ({where}) left out: {why}, which an image must not carry (every pull "
                "gets it); give it where the image runs (a Kubernetes Secret, compose's env_file), "
                "and rotate it: the pre-plan image's layers hold it"
            )
            continue
        if key in OWN_ENV:
            if value != OWN_ENV[key] and key != "PYTHONPATH":
                plan.notes.append(f"ENV {key}={value} replaced: the image sets {key}={OWN_ENV[key]}")
            continue
        if key in _DROPPED_ENV or key.startswith(_DROPPED_ENV_PREFIXES):
            dropped.append(key)
            continue
        if key in _MACHINE_ENV:
            plan.notes.append(
                f"ENV {key} left out: trust and proxies are the machine's, not the image's "
                "(a CA the runtime must trust goes in sutra.runtime_ca_bundle)"
            )
            continue
        if "$" in value:
            plan.notes.append(
                f"ENV {key}={value} left out: it refers to another variable; set it where the image runs"
            )
            continue
        if (
            plan.inputs.reads_known
            and key not in plan.service.reads
            and not key.startswith(_RUNTIME_ENV_PREFIXES)
        ):
            where = plan.preplan.env_where.get(key, plan.preplan.path)
            unread.append(f"{key} ({where})")
            continue
        if (key == "PORT" or key.endswith("_PORT")) and value in old_ports and value != port:
            plan.notes.append(f"ENV {key}={value} is the old port: set to stack.toml's {port}")
            value = port
        kept.append((key, value))
    if dropped:
        plan.notes.append(f"ENV left out (build-time or user-site settings): {', '.join(dropped)}")
    if unread:
        plan.notes.append(
            f"ENV left out: {', '.join(unread)}: {plan.service.name}'s code never reads it (stack file "
            "`reads`; add the name there if a library it uses does)"
        )
    return kept


def check_carries_no_credential(service: str, path: str, text: str, preplan: PrePlan | None) -> None:
    """Refuse a generated Dockerfile that holds a credential's value anywhere: one the
    pre-plan file set in an ENV or ARG, or anything with a credential's shape."""
    known = [c for c in (preplan.credentials if preplan else ()) if len(c.value) >= 6]
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):  # comments stay in the checkout, not in the image
            continue
        found = next((c for c in known if c.value in line), None)
        why = f"{found.why}, {found.name} at {found.where}" if found else credential_in_value(line)
        if why:
            raise DockerfileRefused(
                f"{service}: the generated {path} would carry a credential on its line {number} "
                f"({why}); take it out of the checkout and give it where the image runs; "
                "nothing was written"
            )
