"""What the deps stage installs: tighter old pins as constraints, extras only when asked,
monorepo packages and theirs, build packages in the deps stage alone; and the couplings and
out-of-context packages it refuses."""

from __future__ import annotations

import pytest

from sutra_deploy.core.errors import DockerfileRefused, SutraError
from sutra_deploy.images.dockerfiles.parse import parse_dockerfile

from .checkout import (
    API,
    API_DOCKERFILE,
    API_PYPROJECT,
    CLIENT,
    CONTROL,
    CONTROL_SETUP_PY,
    make_checkout,
    plan,
)


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
