"""Shared layers, on the benchmark checkout's three services and their one lock: what two or
more services declare goes into layers they share, each made by a stage that reads the same in
every Dockerfile using it (so the build cache makes it once), copied first onto the runtime
base; each service's own stage drops what its shared layers hold. The builds themselves are
scripts/benchmark.py --checkout's (they download scipy and scikit-learn)."""

from __future__ import annotations

import pytest

from sutra_deploy.images.dockerfiles.parse import parse_dockerfile

from .benchmark_checkout import benchmark_checkout
from .checkout import final_stage, hadolint, plan


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root, stack = benchmark_checkout(tmp_path_factory.mktemp("layers"))
    return root, plan(root, stack=stack, settings={"lock": "requirements.lock"})


def _stages(text: str) -> dict[str, str]:
    """Each named stage's text, as written (from its FROM to the next one)."""
    blocks = {}
    for block in text.split("\nFROM ")[1:]:
        header = block.split("\n", 1)[0]
        if " AS " in header:
            blocks[header.rsplit(" AS ", 1)[1]] = ("FROM " + block.split("\n\n", 1)[0]).rstrip()
    return blocks


def test_what_services_share_goes_into_layers_they_share(generated):
    _, results = generated
    layers = {name: r.summary["shared_layers"] for name, r in results.items()}
    everyone = {
        "folder": layers["sutra-control"][0]["folder"],
        "services": ["sutra-api", "sutra-control", "sutra-hybrid"],
    }
    # Declared by all three: fastapi, uvicorn (api's [standard] extra stays api's own).
    assert [(layer["requirements"], layer["services"]) for layer in layers["sutra-control"]] == [
        (["fastapi", "uvicorn"], everyone["services"])
    ]
    # api and hybrid also share numpy, grpcio, protobuf and pydantic, on top of that layer;
    # api and control's httpx would make a second chain beside it, so it stays in each image.
    for name in ("sutra-api", "sutra-hybrid"):
        assert layers[name][0]["folder"] == everyone["folder"]
        assert layers[name][1]["requirements"] == ["grpcio", "numpy", "protobuf", "pydantic"]
        assert layers[name][1]["services"] == ["sutra-api", "sutra-hybrid"]
    assert layers["sutra-api"] == layers["sutra-hybrid"]


def test_a_shared_stage_reads_the_same_in_every_dockerfile(generated):
    _, results = generated
    stages = {name: _stages(r.text) for name, r in results.items()}
    shared = [s for s in stages["sutra-api"] if s.startswith("shared-")]
    assert len(shared) == 2
    for stage in shared:
        users = [name for name in stages if stage in stages[name]]
        assert len(users) >= 2
        assert len({stages[name][stage] for name in users}) == 1, stage


def test_the_runtime_copies_the_shared_layers_first_and_finds_them(generated):
    _, results = generated
    for name, result in results.items():
        layers = result.summary["shared_layers"]
        final = final_stage(result.text)
        copies = [i.arguments.split()[0] for i in final["COPY"]]
        # Shared layers first (most shared at the bottom), then the image's own.
        assert copies == [*(layer["folder"] for layer in layers), "/opt/site", "/opt/app"], name
        env = parse_dockerfile(result.text).final
        path = next(i.arguments for i in env.instructions if i.keyword == "ENV").split()[0]
        assert path == "PYTHONPATH=" + ":".join(
            ["/opt/site", *(layer["folder"] for layer in reversed(layers)), "/opt/app"]
        )


def test_each_own_stage_drops_what_its_shared_layers_hold(generated):
    _, results = generated
    for result in results.values():
        deps = _stages(result.text)["deps"]
        folders = [layer["folder"] for layer in result.summary["shared_layers"]]
        assert f"/opt/site {' '.join(folders)} && find /opt/site -mindepth 1 -type d -empty -delete" in deps
        for folder in folders:
            assert f"COPY --from=shared-{folder.rsplit('/', 1)[1]} {folder} {folder}" in deps


def test_the_dockerfiles_pass_hadolint(generated):
    root, results = generated
    paths = []
    for result in results.values():
        path = root / result.path
        path.write_text(result.text)
        paths.append(path)
    outcome = hadolint(*paths)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr


def test_without_a_lock_nothing_is_shared(tmp_path):
    root, stack = benchmark_checkout(tmp_path)
    results = plan(root, stack=stack)
    assert all(r.summary["shared_layers"] == [] for r in results.values())
    assert all("shared-" not in r.text for r in results.values())


def test_one_service_alone_shares_nothing(tmp_path):
    root, stack = benchmark_checkout(tmp_path)
    result = plan(root, "sutra-api", stack=stack, settings={"lock": "requirements.lock"})["sutra-api"]
    assert result.summary["shared_layers"] == []
