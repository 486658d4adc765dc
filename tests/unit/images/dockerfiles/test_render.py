"""The v2 Dockerfiles written from the synthetic checkout: the reference implementation's
shape (a deps stage, or a build stage when there is nothing to install; a distroless,
non-root runtime with no shell anywhere), and hadolint on every one."""

from __future__ import annotations

import json

from sutra_deploy.core.source import REFERENCE_ROOT
from sutra_deploy.images.dockerfiles.model import SITE
from sutra_deploy.images.dockerfiles.parse import parse_dockerfile
from sutra_deploy.images.dockerfiles.render import (
    PRUNE_SITE,
    SOURCELESS_SITE,
    dedupe_step,
    prune_steps,
    sourceless_steps,
)

from ....facts import check_health_command
from .checkout import API, API_PORT, CLIENT, CONTROL, STACK, final_stage, hadolint, make_checkout, plan

API_SERVICE = STACK.service("sutra-api")
BUILD_BASE = STACK.base_image("python")
RUNTIME_BASE = STACK.base_image("python-runtime")


def test_api_follows_the_reference_v2_shape(checkout):
    result = plan(checkout, "sutra-api")["sutra-api"]
    assert result.status == "new" and result.path == API_SERVICE.dockerfile("v2")
    text = result.text
    dockerfile = parse_dockerfile(text)
    # Bases are build ARGs whose defaults are the official images, as stack.toml names them.
    assert f"ARG {BUILD_BASE.build_arg}={BUILD_BASE.official}" in text
    assert f"ARG {RUNTIME_BASE.build_arg}={RUNTIME_BASE.official}" in text
    assert [(s.base, s.name) for s in dockerfile.stages] == [
        (f"${{{BUILD_BASE.build_arg}}}", "deps"),
        (f"${{{RUNTIME_BASE.build_arg}}}", None),
    ]
    # The deps stage: the monorepo client copied, the declared dependencies into a --target.
    deps = [f"{i.keyword} {i.arguments}" for i in dockerfile.stages[0].instructions]
    assert deps[0] == f"COPY {CLIENT} /opt/local/sutra-storage-client"
    install = dockerfile.stages[0].instructions[1].arguments
    assert "--target /opt/site -r /tmp/requirements.txt -c /tmp/constraints.txt" in install
    assert install.index("'fastapi>=0.100'") < install.index("'uvicorn>=0.23'")
    assert "/opt/local/sutra-storage-client" in install
    assert f"COPY {API}/sutra_api /opt/app/sutra_api" in deps
    assert f"COPY {API}/templates /opt/app/templates" in deps  # package data, where the code finds it
    assert (
        deps[-1].startswith("RUN python3 -m compileall") and "--invalidation-mode unchecked-hash" in deps[-1]
    )
    for absent in ("torch", "prometheus", "curl", "apk", "apt-get", "--user", ".local"):
        assert absent not in text, absent
    assert not any("tests" in i.arguments for i in dockerfile.stages[0].instructions if i.keyword == "COPY")
    # Only what the runtime loads: the install is pruned, the dependencies shipped as byte-code.
    assert all(step in install for step in PRUNE_SITE)
    assert all(step in deps[-1] for step in SOURCELESS_SITE)
    # The runtime: both folders, non-root, no shell anywhere (every RUN and CMD in exec form).
    final = final_stage(text)
    assert [i.arguments for i in final["COPY"]] == ["/opt/site /opt/site", "/opt/app /opt/app"]
    assert [i.flag("from") for i in final["COPY"]] == ["deps", "deps"]
    assert [i.arguments for i in final["USER"]] == ["65532:65532"]
    assert [i.arguments for i in final["WORKDIR"]] == ["/opt/app"]
    assert all(i.exec_form is not None for i in final["RUN"] + final["ENTRYPOINT"])
    assert final["RUN"][0].exec_form == ["python3", "-c", "import uvicorn, sutra_api.main"]
    assert final["ENTRYPOINT"][0].exec_form == [
        *("python3", "-m", "uvicorn", "sutra_api.main:app"),
        *("--host", "0.0.0.0", "--port", str(API_PORT)),
    ]
    assert "CMD" not in final
    # Port and health from stack.toml; the old check's timing kept.
    assert [i.arguments for i in final["EXPOSE"]] == [str(API_PORT)]
    [check] = final["HEALTHCHECK"]
    assert (check.flag("interval"), check.flag("timeout")) == ("10s", "2s")
    command = json.loads(check.arguments.removeprefix("CMD").strip())
    assert command[:2] == ["python3", "-c"]
    check_health_command(API_SERVICE, command, API_PORT, "generated")
    env = dict(w.split("=", 1) for i in final["ENV"] for w in i.words())
    assert env == {
        "PYTHONPATH": "/opt/site:/opt/app",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "SUTRA_GREETING": "hello from the checkout",
    }


def test_control_builds_from_its_own_folder(checkout):
    text = plan(checkout, "sutra-control")["sutra-control"].text
    dockerfile = parse_dockerfile(text)
    assert dockerfile.stages[0].name == "build"  # nothing to install: no pip, no /opt/site
    assert [f"{i.keyword} {i.arguments}" for i in dockerfile.stages[0].instructions[:2]] == [
        "COPY sutra_control /opt/app/sutra_control",
        "COPY static /opt/app/static",  # the old `COPY . .` brought it next to the code
    ]
    assert "/opt/site" not in text and "pip" not in text
    final = final_stage(text)
    assert final["ENTRYPOINT"][0].exec_form == ["python3", "-m", "sutra_control"]  # `CMD exec python -m …`
    assert final["RUN"][0].exec_form == ["python3", "-c", "import sutra_control"]  # not its __main__


def test_every_generated_dockerfile_passes_hadolint(checkout, tmp_path):
    variants = {
        "default": plan(checkout),
        "extras-and-build-packages": plan(
            checkout, "sutra-api", extras=("metrics",), settings={"build_packages": ["gcc", "libc6-dev"]}
        ),
        "reference-regenerated": plan(STACK.path.parent / "reference", force=True),
    }
    make_checkout(checkout, {f"{CONTROL}/Dockerfile": None})
    (checkout / CONTROL / "Dockerfile").unlink()
    variants["console-script"] = plan(checkout, "sutra-control")
    files = []
    for name, results in variants.items():
        for service, result in results.items():
            path = tmp_path / f"{name}-{service}.Dockerfile"
            path.write_text(result.text)
            files.append(path)
    assert len(files) == 8
    linted = hadolint(*files)
    assert linted.returncode == 0 and linted.stdout == "", linted.stdout + linted.stderr


def test_the_reference_dockerfiles_prune_and_ship_byte_code_as_the_generator_does():
    """One recipe for what a runtime carries: the reference v2 files repeat the generator's, in
    their shared stage as in each service's own, and drop what the shared stage holds."""
    web = "/opt/shared/web"
    for service in ("sutra-api", "sutra-hybrid"):
        dockerfile = parse_dockerfile((REFERENCE_ROOT / STACK.service(service).dockerfile("v2")).read_text())
        stages = {stage.name: stage for stage in dockerfile.stages}
        shared = [i.arguments for i in stages["shared-web"].instructions if i.keyword == "RUN"]
        assert len(shared) == 1 and "pip install" in shared[0], service
        assert all(step in shared[0] for step in prune_steps(web)), service
        assert all(step in shared[0] for step in sourceless_steps(web)), service
        runs = [i.arguments for i in stages["deps"].instructions if i.keyword == "RUN"]
        install = next(r for r in runs if "pip install" in r)
        assert all(step in install for step in PRUNE_SITE), service
        assert dedupe_step(SITE, [web]) in install, service
        assert all(step in runs[-1] for step in SOURCELESS_SITE), service
