"""The deploy pipeline: what a dry run prints, in order, without Docker or a cluster; which
digests pin the render; a bad `sutra.verify` stops it before anything is built."""

from __future__ import annotations

import logging

import pytest

from sutra_deploy.core.errors import SutraError
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s.environments import environment
from sutra_deploy.k8s.manifests import namespace_of, render, stateful_names
from sutra_deploy.ship.deploy import deploy_kubernetes, pushed_digests
from sutra_deploy.ship.push import Pushed
from sutra_deploy.ship.release import Release
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.engine import Engine
from sutra_deploy.tools.kubectl import Kubectl

from ...kubeconfigs import kubeconfig
from ...standin.recording import REAL_KUBECTL

STACK = load_stack(PROJECT_DIR / "stack.toml")
STAGING = environment(DEFAULTS["sutra"], "staging")
DIGEST = "sha256:" + "a" * 64


RELEASE = Release("0123456789ab", "0123456789ab" + "0" * 28, "git commit")


def test_a_dry_kubernetes_deploy_prints_every_step_in_order(capsys, caplog, tmp_path):
    config = kubeconfig(tmp_path / "kubeconfig", STAGING.context)
    commands = Commands(dry=True, env={"KUBECONFIG": str(config)})
    # Only what reads no cluster runs (`kustomize`, `config current-context`), and `kubectl
    # diff`: the server's own dry run, here against a server that is not there.
    kubectl = Kubectl(commands, str(REAL_KUBECTL))
    built = []
    version = STACK.default_version
    sutra = logging.getLogger("sutra")
    sutra.addHandler(caplog.handler)  # the tool's logger does not propagate (edge.py)
    try:
        with caplog.at_level(logging.INFO, logger="sutra"):
            smoke = deploy_kubernetes(
                STACK,
                Engine(commands),
                kubectl,
                STAGING,
                version=version,
                build=lambda: built.append(True),
                smoke_timeout=1,
                yes=False,
                release=RELEASE,
                floating=[version, "latest"],
            )
    finally:
        sutra.removeHandler(caplog.handler)
    assert smoke is None and built == [True]
    objects = render(Kubectl(Commands(), str(REAL_KUBECTL)), STAGING, STACK)
    namespace, stateful = namespace_of(objects), stateful_names(objects)
    order = sorted(STACK.service_names, key=lambda name: name not in stateful)
    # The release first; what moves to it (`:v2`, `:latest`) only after it rolled out.
    targets = [(s, s.reference(STAGING.registry, tag=RELEASE.name)) for s in STACK.services]
    floating = [
        (s, s.reference(STAGING.registry, tag=tag)) for s in STACK.services for tag in (version, "latest")
    ]
    revision = "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
    kubectl_lines = [line.removeprefix(f"{REAL_KUBECTL} ") for line in commands.printed]
    expected = [
        # Dry, the engine has no images: each comes from its release build (`inv build --tag`).
        *(f"docker tag {s.reference(tag=RELEASE.name)} {target}" for s, target in targets),
        *(f"docker push {target}" for _, target in targets),
        *(f"get deployment/{name} --namespace {namespace} --output '{revision}'" for name in order),
        *["apply --filename -"] * 4,
        *(
            f"rollout status deployment/{name} --namespace {namespace} --timeout={STAGING.rollout_timeout}s"
            for name in order
        ),
    ]
    assert kubectl_lines[: len(expected)] == expected
    moved = [
        *(f"docker tag {s.reference(tag=RELEASE.name)} {target}" for s, target in floating),
        *(f"docker push {target}" for _, target in floating),
    ]
    forwards = kubectl_lines[len(expected) : -len(moved)]
    assert [line.split()[:2] for line in forwards] == [["port-forward", f"svc/{name}"] for name in order]
    assert kubectl_lines[-len(moved) :] == moved
    out = capsys.readouterr().out.splitlines()
    assert out == commands.printed
    # The context was checked as the real run checks it, and what applying would change asked.
    assert "[deploy] dry run: could not ask the cluster what would change: kubectl diff: " in caplog.text


def test_digests_of_the_versioned_references_only():
    api, client = STACK.service("sutra-api"), STACK.service("sutra-client")
    pushed = [
        Pushed(api.name, api.reference("r.io/x", tag="v2"), DIGEST),
        Pushed(api.name, api.reference("r.io/x", tag="latest"), "sha256:" + "b" * 64),
        Pushed(api.name, api.reference("elsewhere.io", tag="v2"), "sha256:" + "c" * 64),
        Pushed(client.name, client.reference("r.io/x", tag="v2"), "(dry run)"),
    ]
    assert pushed_digests(pushed, STACK, "r.io/x", "v2") == {api.name: DIGEST}


def test_a_bad_verify_setting_stops_the_deploy_before_the_build():
    commands = Commands(dry=True)
    built = []
    with pytest.raises(SutraError, match=r"^sutra\.verify\.startup_seconds must be a positive number"):
        deploy_kubernetes(
            STACK,
            Engine(commands),
            Kubectl(commands, str(REAL_KUBECTL)),
            STAGING,
            version=STACK.default_version,
            build=lambda: built.append(True),
            smoke_timeout=1,
            yes=False,
            verify_settings={**DEFAULTS["sutra"]["verify"], "startup_seconds": "soon"},
        )
    assert built == [] and commands.printed == []
