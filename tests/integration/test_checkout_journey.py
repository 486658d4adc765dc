"""A checkout shaped like a real one (tests/unit/init/monorepo.py: an API whose __main__ serves
on its own port, another learn/find contract, pydantic-settings with a prefix, a Rust server,
a static client, a pre-plan Dockerfile with a here-document), taken the way a new user takes
theirs: `init` → `fix-deps --apply` → `dockerfiles --write` → `build` → `sizes` → `local-up` →
`smoke` → `verify`, every step through the real `inv`, with the stack file `init` wrote; and the pre-plan
v1 build stopping at the preflight, dry or not.

Its images are the checkout's own (`synthetic-*`, named by its compose file), its compose
project and host ports the test's own; all of them go at the end."""

from __future__ import annotations

import json
import os
import re

import pytest

from sutra_deploy.core.stack import load_stack
from sutra_deploy.tools.ports import free_port

from ..unit.init.monorepo import JOURNEY, make_monorepo
from .conftest import docker, inv


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkout")
    root = make_monorepo(folder / "sutra")
    stack_file = folder / "stack.toml"
    env = {"INVOKE_SUTRA_STACK_FILE": str(stack_file), "INVOKE_SUTRA_PROJECT": f"sutra-journey-{os.getpid()}"}
    try:
        yield root, stack_file, env
    finally:
        if stack_file.exists():
            stack = load_stack(stack_file)
            ports = {
                f"SUTRA_{s.name.removeprefix('sutra-').upper().replace('-', '_')}_PORT": "1"
                for s in stack.services
            }
            inv("local-down", "--volumes", **env, **ports)
            docker(
                "image",
                "rm",
                "--force",
                *(f"{s.image}:{v}" for s in stack.services for v in stack.versions),
                check=False,
            )


def test_a_new_checkout_from_init_to_verify(checkout):
    root, stack_file, env = checkout
    described = inv("init", "--root", str(root), "--write", str(stack_file))
    assert described.returncode == 0, described.stderr
    assert "journey proposed from POST /api/v1/facts and GET /api/v1/search" in described.stderr
    # As init said: check the journey it proposed against the API; this API answers otherwise.
    text = stack_file.read_text()
    start, end = text.index("[journey.learn]"), text.index("# Base images.")
    stack_file.write_text(text[:start] + JOURNEY + "\n" + text[end:])
    stack = load_stack(stack_file)
    assert stack.source_root == root.resolve()  # no --root from here on

    fixed = inv("fix-deps", "--apply", **env)
    assert fixed.returncode == 0, fixed.stdout[-2000:] + fixed.stderr[-2000:]
    written = inv("dockerfiles", "--write", **env)
    assert written.returncode == 0, written.stderr[-3000:]
    assert (root / "packages/sutra-api/Dockerfile.optimized").is_file()
    assert "**/node_modules" in (root / ".dockerignore").read_text().splitlines()
    generated = (root / "packages/sutra-api/Dockerfile.optimized").read_text()
    api = stack.service("sutra-api")
    assert f'"--port", "{api.port.container}"' in generated  # its __main__'s 9000, served by uvicorn

    for dry in (("--dry",), ()):
        old = inv(*dry, "build", "--version", "v1", **env)
        assert old.returncode == 2, old.stderr[-2000:]
        assert re.search(
            r"^\[preflight\] packages/sutra-api/Dockerfile:2: RUN <<EOF \(a heredoc\)", old.stderr, re.M
        )
        assert old.stderr.strip().splitlines()[-1].endswith("; nothing was built")

    built = inv("build", **env)
    assert built.returncode == 0, built.stderr[-3000:]
    print(built.stdout)  # the figures, with -rP
    sizes = inv("sizes", "--json", **env)
    assert sizes.returncode == 0, sizes.stdout[-2000:] + sizes.stderr[-2000:]
    measured = {row["name"]: row["size_bytes"] for row in json.loads(sizes.stdout)["services"]}
    assert set(measured) == set(stack.service_names)
    print({name: round(size / 1e6, 1) for name, size in measured.items()})

    ports = {
        f"SUTRA_{s.name.removeprefix('sutra-').upper().replace('-', '_')}_PORT": str(free_port())
        for s in stack.services
    }
    up = inv("local-up", **env, **ports)
    assert up.returncode == 0, up.stderr[-3000:]
    print(up.stdout)
    smoke = inv("smoke", "--json", **env, **ports)
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads(smoke.stdout)["checks"]}
    assert set(checks) == {*stack.service_names, "end-to-end"}
    assert checks["end-to-end"]["detail"].startswith("learned ")
    assert (
        "(POST /api/v1/facts on sutra-api) and found it (GET /api/v1/search?q={marker} on sutra-api)"
        in (checks["end-to-end"]["detail"])
    )

    # The plan's metrics on its own project, under the limits of the production manifests as
    # the component beside the stack file makes them (the checkout has no hybrid or control).
    verified = inv("verify", "--json", "--requests", "200", **env)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    assert (stack_file.parent / "stack.k8s" / "kustomization.yaml").is_file()
    metrics = {m["name"]: m for m in json.loads(verified.stdout)["metrics"]}
    for name in stack.service_names:
        assert metrics[f"image size: {name}"]["status"] == "pass"
        assert metrics[f"pod startup: {name}"]["status"] == "pass"
        assert metrics[f"limits: {name}"]["status"] == "pass"
    assert "limits: sutra-hybrid" not in metrics
    # The plan's memory target for hybrid names no service of this stack: said, not dropped silently.
    assert "[verify] sutra.verify.memory_targets names sutra-hybrid: no service of stack.toml" in (
        verified.stderr
    )
    assert metrics["load: errors"]["status"] == "pass"
    assert metrics["integrity: facts found after the load"]["status"] == "pass"
    print({name: (m["value"], m["unit"], m["status"]) for name, m in metrics.items()})
