"""A user's stack in the manifests: the component beside its stack file, rendered by the real
kustomize. (tests/manifests/test_facts.py checks every overlay against the checkout's stack.)"""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest

from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s import environment, render, validate
from sutra_deploy.k8s.manifests import parse_manifests, service_ports
from sutra_deploy.k8s.stack_component import BASE, component, component_dir
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.kubectl import Kubectl

from ...standin.recording import REAL_KUBECTL
from ..init.monorepo import init_checkout

KUBECTL = Kubectl(Commands(), str(REAL_KUBECTL))
BASE_OBJECTS = parse_manifests(KUBECTL.kustomize(BASE))
REFERENCE = load_stack(PROJECT_DIR / "stack.toml")


def inv(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR), *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env={**os.environ, **env},
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory):
    return init_checkout(tmp_path_factory.mktemp("stack"))


def moved(stack_file, to, text=None):
    """The stack file copied to ``to``, its root still the checkout (recorded relative to it)."""
    root = os.path.relpath(stack_file.parent / "checkout", to.parent)
    to.write_text((text or stack_file.read_text()).replace('root = "checkout"', f'root = "{root}"'))
    return to


def policy(objects, name):
    [found] = [o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == name]
    return found


def peers(rule):
    return [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in rule.get("from", [])]


def test_the_reference_stacks_component_changes_nothing():
    assert component(REFERENCE, BASE_OBJECTS, service_ports(BASE_OBJECTS)) == {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
    }


def test_a_copy_of_the_reference_stack_file_renders_as_the_reference(tmp_path):
    """Its component would be empty, which kustomize refuses ("kustomization.yaml is empty"):
    every environment failed to render for a user whose stack file asks for nothing new."""
    copy_file = tmp_path / "mine.toml"
    copy_file.write_bytes((PROJECT_DIR / "stack.toml").read_bytes())
    mine = load_stack(copy_file)
    assert not mine.is_reference
    for name in ("staging", "production"):
        env = environment(DEFAULTS["sutra"], name)
        assert render(KUBECTL, env, mine) == render(KUBECTL, env, REFERENCE)
    result = inv("capacity", "--env", "staging", INVOKE_SUTRA_STACK_FILE=str(copy_file))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("env", sorted(DEFAULTS["sutra"]["environments"]))
def test_a_checkouts_manifests_validate_and_admit_only_its_own_services(stack_file, env):
    objects = render(KUBECTL, environment(DEFAULTS["sutra"], env), load_stack(stack_file))
    assert validate(objects) == []
    # storage-server was reached by api, hybrid and control: the checkout has only api.
    [rule] = policy(objects, "storage-server")["spec"]["ingress"]
    assert peers(rule) == ["sutra-api"]
    # The api's rule for control went whole: left empty, it would have admitted every source.
    rules = policy(objects, "sutra-api")["spec"]["ingress"]
    assert [peers(r) for r in rules] == [[]] and "from" not in rules[0]  # the public rule, as it was
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "PodDisruptionBudget"} <= {
        "sutra-api",
        "sutra-client",
    }


def test_the_component_lives_beside_the_stack_file_and_is_rewritten_only_when_it_changes(stack_file):
    stack = load_stack(stack_file)
    rendered = inv("k8s-render", "--env", "staging", INVOKE_SUTRA_STACK_FILE=str(stack_file))
    assert rendered.returncode == 0, rendered.stderr
    written = component_dir(stack) / "kustomization.yaml"
    assert written.parent == stack_file.parent / "stack.k8s"
    assert "Edit stack.toml instead" in written.read_text()
    before = written.stat().st_mtime_ns
    again = inv("k8s-render", "--env", "staging", INVOKE_SUTRA_STACK_FILE=str(stack_file))
    assert again.stdout == rendered.stdout
    assert written.stat().st_mtime_ns == before
    # By hand, as the component's docstring says: an overlay with it, through plain kustomize.
    wrapper = stack_file.parent / "by-hand"
    wrapper.mkdir(exist_ok=True)
    overlay = os.path.relpath(PROJECT_DIR / "k8s" / "overlays" / "staging", wrapper)
    (wrapper / "kustomization.yaml").write_text(f"resources: [{overlay}]\ncomponents: [../stack.k8s]\n")
    by_hand = parse_manifests(KUBECTL.kustomize(wrapper))
    api = next(o for o in by_hand if o["kind"] == "Deployment" and o["metadata"]["name"] == "sutra-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == stack.service("sutra-api").port.container
    assert container["readinessProbe"]["httpGet"]["path"] == stack.service("sutra-api").health.path


def test_a_service_the_base_has_no_manifests_for_is_one_line(stack_file, tmp_path):
    text = stack_file.read_text().replace("[services.sutra-client]", "[services.sutra-web]")
    renamed = moved(stack_file, tmp_path / "renamed.toml", text)
    result = inv("k8s-render", "--env", "staging", INVOKE_SUTRA_STACK_FILE=str(renamed))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: renamed.toml: k8s/base has no manifests for sutra-web (it has storage-server, "
        "sutra-api, sutra-client, sutra-control, sutra-hybrid); name the service after one of "
        "those, or add its manifests to k8s/base"
    )
    assert not (tmp_path / "renamed.k8s").exists()


def test_a_component_it_cannot_write_is_one_line(stack_file, tmp_path):
    copy = moved(stack_file, tmp_path / "stack.toml")
    (tmp_path / "stack.k8s").write_text("a file where the component's folder goes\n")  # even root fails
    result = inv("k8s-render", "--env", "staging", INVOKE_SUTRA_STACK_FILE=str(copy))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot write the stack's Kubernetes component {tmp_path}/stack.k8s/")


def test_a_variable_the_base_takes_from_a_secret_stays():
    base = copy.deepcopy(BASE_OBJECTS)
    api = next(o for o in base if o["kind"] == "Deployment" and o["metadata"]["name"] == "sutra-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    secret = {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "sutra", "key": "token"}}}
    container["env"] = [*container["env"], secret]
    patches = component(REFERENCE, base, service_ports(base)).get("patches", [])
    assert patches == []  # the stack does not set API_TOKEN: the base's Secret reference stays
