"""The v2 Dockerfiles generated from the synthetic checkout: their shape, what they carry over
from the pre-plan Dockerfile and the metadata, what they refuse, and hadolint on each."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sutra_deploy.dockerfiles import DockerfileRefused
from sutra_deploy.dockerfiles.generate import health_probe
from sutra_deploy.dockerfiles.parse import parse_dockerfile
from sutra_deploy.errors import SutraError
from sutra_deploy.stack import HealthCheck

from ...facts import check_health_command
from .checkout import (
    API,
    API_DOCKERFILE,
    API_PORT,
    API_PYPROJECT,
    CLIENT,
    CONTROL,
    CONTROL_DOCKERFILE,
    CONTROL_SETUP_PY,
    STACK,
    hadolint,
    make_checkout,
    plan,
)

API_SERVICE = STACK.service("sutra-api")
BUILD_BASE = STACK.base_image("python")
RUNTIME_BASE = STACK.base_image("python-runtime")


def final_stage(text: str) -> dict[str, list]:
    """The runtime stage's instructions by keyword, read back with the project's own parser."""
    dockerfile = parse_dockerfile(text)
    found: dict[str, list] = {}
    for instruction in dockerfile.final.instructions:
        found.setdefault(instruction.keyword, []).append(instruction)
    return found


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return make_checkout(tmp_path / "sutra")


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
    for absent in ("tests", "torch", "prometheus", "curl", "apk", "apt-get", "--user", ".local"):
        assert absent not in text, absent
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


def test_api_says_what_it_carried_over_and_what_it_left_out(checkout):
    result = plan(checkout, "sutra-api")["sutra-api"]
    notes = "\n".join(result.notes)
    assert f"EXPOSEs 8080; stack.toml's port {API_PORT} wins" in notes
    assert f"--port 8080 disagrees with stack.toml's port {API_PORT}" in notes
    assert f"command from CMD ({API}/Dockerfile:29): uvicorn becomes python3 -m uvicorn" in notes
    assert "does not declare: torch" in notes
    assert "ENV left out (build-time or user-site settings): PATH, PIP_NO_CACHE_DIR" in notes
    # The build machine's trust store and proxy never reach the image (a site CA has a setting).
    assert "ENV SSL_CERT_FILE left out: trust and proxies are the machine's" in notes
    assert "ENV HTTPS_PROXY left out" in notes
    assert "optional extras left out: metrics" in notes
    assert "apt-get gcc g++ curl; apk curl" in notes
    assert "sutra.dockerfiles.build_packages" in notes
    assert result.summary["entrypoint"]["source"].startswith(f"CMD ({API}/Dockerfile:29)")


def test_a_tighter_old_pin_is_kept_as_a_constraint_and_said(checkout):
    result = plan(checkout, "sutra-api")["sutra-api"]
    assert result.summary["constraints"] == ["fastapi<1.0"]
    assert f"#   fastapi<1.0 ({API}/Dockerfile:9; declared fastapi>=0.100)" in result.text
    kept = f"constraint fastapi<1.0 kept: {API}/Dockerfile:9 pins it tighter than pyproject.toml's"
    assert f"{kept} fastapi>=0.100" in result.notes


def test_an_old_pin_that_contradicts_the_metadata_is_not_kept(checkout):
    old = API_DOCKERFILE.replace("fastapi>=0.100,<1.0", "fastapi<0.90")
    make_checkout(checkout, {f"{API}/Dockerfile": old})
    result = plan(checkout, "sutra-api")["sutra-api"]
    assert result.summary["constraints"] == []
    assert "-c /tmp/constraints.txt" not in result.text
    assert any("contradicts" in n and "the metadata wins" in n for n in result.notes)


def test_extras_only_when_asked(checkout):
    result = plan(checkout, "sutra-api", extras=("metrics",))["sutra-api"]
    assert "'prometheus-client>=0.17'" in result.text
    with pytest.raises(SutraError, match=r"unknown extra 'gpu' for sutra-api; extras declared: metrics"):
        plan(checkout, "sutra-api", extras=("gpu",))


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


def test_console_script_when_the_checkout_has_no_old_dockerfile(checkout):
    make_checkout(checkout, {f"{CONTROL}/Dockerfile": None})
    (checkout / CONTROL / "Dockerfile").unlink()
    result = plan(checkout, "sutra-control")["sutra-control"]
    final = final_stage(result.text)
    assert final["ENTRYPOINT"][0].exec_form == [
        "python3",
        "-c",
        "import sys; from sutra_control.main import main; sys.exit(main())",
    ]
    assert final["RUN"][0].exec_form == ["python3", "-c", "import sutra_control.main"]
    assert "command from console script sutra-control = sutra_control.main:main" in "\n".join(result.notes)


def test_entrypoint_and_cmd_stay_apart_and_an_init_wrapper_goes(checkout):
    old = API_DOCKERFILE.replace(
        'CMD ["uvicorn", "sutra_api.main:app", "--host", "0.0.0.0", "--port", "8080"]',
        'ENTRYPOINT ["/usr/bin/tini", "--", "/root/.local/bin/gunicorn"]\n'
        'CMD ["-b", "0.0.0.0:8080", "-k", "uvicorn.workers.UvicornWorker", "sutra_api.main:app"]',
    )
    make_checkout(checkout, {f"{API}/Dockerfile": old})
    final = final_stage(plan(checkout, "sutra-api")["sutra-api"].text)
    assert final["ENTRYPOINT"][0].exec_form == ["python3", "-m", "gunicorn"]
    assert final["CMD"][0].exec_form == [
        *("-b", f"0.0.0.0:{API_PORT}", "-k", "uvicorn.workers.UvicornWorker", "sutra_api.main:app")
    ]
    assert final["RUN"][0].exec_form == ["python3", "-c", "import gunicorn, sutra_api.main"]


# --- refusals -----------------------------------------------------------------------


def test_a_package_coupled_to_another_service_is_refused(checkout):
    coupled = API_PYPROJECT.replace('"uvicorn>=0.23",', '"uvicorn>=0.23",\n    "sutra-hybrid>=1.0",')
    make_checkout(checkout, {f"{API}/pyproject.toml": coupled})
    with pytest.raises(DockerfileRefused) as refused:
        plan(checkout, "sutra-api")
    message = str(refused.value)
    assert message.startswith("sutra-api: fix-deps finds service-coupling sutra-hybrid in packages/sutra-api")
    assert "an image must not bake them in" in message
    assert f"`inv fix-deps --root {checkout} --service sutra-api --apply`" in message
    assert refused.value.exit_code == 1


def test_code_that_imports_another_service_is_refused_with_the_code_change_hint(checkout):
    main = (checkout / API / "sutra_api" / "main.py").read_text() + "\nimport sutra_hybrid\n"
    make_checkout(checkout, {f"{API}/sutra_api/main.py": main})
    with pytest.raises(
        DockerfileRefused, match=r"service-coupling sutra-hybrid .* shows what needs a code change"
    ):
        plan(checkout, "sutra-api")


@pytest.mark.parametrize(
    ("cmd", "feature"),
    [
        ("CMD python -m sutra_control --port $CONTROL_PORT", "$CONTROL_PORT"),
        ("CMD python -m sutra_control migrate && python -m sutra_control", "&&"),
    ],
)
def test_a_command_that_needs_a_shell_is_refused(checkout, cmd, feature):
    make_checkout(
        checkout,
        {f"{CONTROL}/Dockerfile": CONTROL_DOCKERFILE.replace("CMD exec python -m sutra_control", cmd)},
    )
    with pytest.raises(DockerfileRefused) as refused:
        plan(checkout, "sutra-control")
    message = str(refused.value)
    assert message.startswith(f"sutra-control: the CMD in {CONTROL}/Dockerfile:7 needs a shell (`{feature}`)")
    assert "write it in exec form" in message and "\n" not in message


@pytest.mark.parametrize(
    "instruction",
    ['ENTRYPOINT ["sh", "-c", "python -m sutra_control"]', 'ENTRYPOINT ["./entrypoint.sh"]'],
)
def test_a_shell_or_a_shell_script_in_exec_form_is_refused(checkout, instruction):
    make_checkout(
        checkout,
        {
            f"{CONTROL}/Dockerfile": CONTROL_DOCKERFILE.replace(
                "CMD exec python -m sutra_control", instruction
            )
        },
    )
    with pytest.raises(DockerfileRefused, match=r"a shell, which the distroless runtime does not have"):
        plan(checkout, "sutra-control")


def test_a_monorepo_dependency_outside_the_build_context_is_refused(checkout):
    setup_py = CONTROL_SETUP_PY.replace("install_requires=[]", 'install_requires=["sutra-storage-client"]')
    main = "import sutra_storage_client\n\n\ndef main():\n    return 0\n"
    make_checkout(checkout, {f"{CONTROL}/setup.py": setup_py, f"{CONTROL}/sutra_control/main.py": main})
    with pytest.raises(DockerfileRefused) as refused:
        plan(checkout, "sutra-control")
    assert str(refused.value) == (
        f"sutra-control: sutra-control depends on sutra-storage-client ({CLIENT}), a monorepo package "
        f'outside the build context {CONTROL}: build sutra-control from the root (context = "." in '
        "stack.toml) or install sutra-storage-client from an index"
    )


def test_a_service_reached_through_a_shared_package_is_refused(checkout):
    client = (checkout / CLIENT / "setup.py").read_text()
    make_checkout(
        checkout,
        {f"{CLIENT}/setup.py": client.replace("install_requires=[]", 'install_requires=["sutra-hybrid"]')},
    )
    with pytest.raises(
        DockerfileRefused,
        match=r"^sutra-api: sutra-storage-client declares sutra-hybrid, the package of the sutra-hybrid",
    ):
        plan(checkout, "sutra-api")


def test_monorepo_dependencies_of_monorepo_dependencies_come_along(checkout):
    client = (
        (checkout / CLIENT / "setup.py")
        .read_text()
        .replace("install_requires=[]", 'install_requires=["sutra-core>=0.1"]')
    )
    make_checkout(
        checkout,
        {
            f"{CLIENT}/setup.py": client,
            "packages/sutra-core/pyproject.toml": '[project]\nname = "sutra-core"\ndependencies = []\n',
            "packages/sutra-core/sutra_core/__init__.py": "",
        },
    )
    result = plan(checkout, "sutra-api")["sutra-api"]
    assert result.summary["local_packages"] == [CLIENT, "packages/sutra-core"]
    assert "COPY packages/sutra-core /opt/local/sutra-core" in result.text
    assert "/opt/local/sutra-core \\" in result.text  # pip finds it here, not on an index


# --- the health probe, hadolint -----------------------------------------------------


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


def run_probe(command: list[str]) -> int:
    return subprocess.run([sys.executable, *command[1:]], capture_output=True, timeout=30).returncode


def test_the_health_probes_work_without_curl():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        assert run_probe(health_probe(HealthCheck("http", "/health"), port, "3s")) == 0
        assert run_probe(health_probe(HealthCheck("http", "/down"), port, "3s")) != 0
        assert run_probe(health_probe(HealthCheck("tcp"), port, "1500ms")) == 0
        assert "timeout=1.5" in health_probe(HealthCheck("tcp"), port, "1500ms")[2]
    finally:
        server.shutdown()
        server.server_close()
    assert run_probe(health_probe(HealthCheck("tcp"), port, "1s")) != 0  # nothing listens now


def test_build_packages_stay_in_the_deps_stage(checkout):
    settings = {"build_packages": {"sutra-api": ["gcc", "libc6-dev"]}}
    text = plan(checkout, "sutra-api", settings=settings)["sutra-api"].text
    deps, runtime = parse_dockerfile(text).stages
    install = next(i for i in deps.instructions if i.keyword == "RUN")
    assert "apt-get install -y --no-install-recommends gcc libc6-dev" in install.arguments
    assert install.arguments.index("apt-get") < install.arguments.index("pip install")
    assert not any("apt" in i.arguments for i in runtime.instructions)
    with pytest.raises(SutraError, match=r"build_packages: \['gcc; rm -rf /'\] is not a list of Debian"):
        plan(checkout, "sutra-api", settings={"build_packages": ["gcc; rm -rf /"]})


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
