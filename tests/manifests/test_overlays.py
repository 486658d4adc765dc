"""Every overlay, rendered by the real `kubectl kustomize`, validated against Kubernetes'
OpenAPI schemas (strict) and the project's policy. Run by `nox -s manifests`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from sutra_deploy import k8s
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.tools.commands import Commands

from ..facts import STACK
from ..plan import PLAN_RESOURCES as PLAN

OVERLAYS = sorted(p.name for p in (PROJECT_DIR / "k8s" / "overlays").iterdir() if p.is_dir())
KUBECTL = k8s.Kubectl(Commands(), str(Path(sys.executable).parent / "kubectl"))
ENVIRONMENTS = DEFAULTS["sutra"]["environments"]


def rendered(name: str) -> list[dict]:
    return k8s.render(KUBECTL, k8s.environment(DEFAULTS["sutra"], name), STACK)


def test_every_overlay_is_a_configured_environment():
    assert OVERLAYS == sorted(ENVIRONMENTS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_the_schemas_and_the_policy(overlay):
    objects = rendered(overlay)
    assert objects, f"{overlay} renders nothing"
    assert k8s.validate(objects, k8s.KUBERNETES_VERSION) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_keeps_one_namespace_and_no_latest(overlay):
    objects = rendered(overlay)
    namespace = k8s.namespace_of(objects)
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"] == [namespace]
    assert not any(image.endswith(":latest") for image in k8s.container_images(objects))


def test_a_schema_error_is_caught():
    objects = rendered("staging")
    broken = [dict(o) for o in objects]
    deployment = next(o for o in broken if o["kind"] == "Deployment")
    deployment["spec"] = {**deployment["spec"], "replica": 3}  # a typo strict validation must reject
    problems = k8s.validate(broken, k8s.KUBERNETES_VERSION)
    assert any(p.startswith(f"Deployment/{deployment['metadata']['name']}") for p in problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_images_are_the_stacks_references_in_the_environments_registry(overlay):
    """A plain `kubectl kustomize` of the overlay pins what `Service.reference` names."""
    env = k8s.environment(DEFAULTS["sutra"], overlay)
    tag = env.tag or STACK.default_version
    kustomization = yaml.safe_load((env.overlay / "kustomization.yaml").read_text())
    assert sorted(kustomization["images"], key=lambda entry: entry["name"]) == sorted(
        ({"name": s.image, "newName": s.reference(env.registry), "newTag": tag} for s in STACK.services),
        key=lambda entry: entry["name"],
    )
    plain = k8s.parse_manifests(KUBECTL.kustomize(env.overlay))
    images = {name: image for name, (_, image) in k8s.images_by_deployment(plain).items()}
    assert images == {s.name: s.reference(env.registry, tag=tag) for s in STACK.services}


def test_production_carries_exactly_the_plans_table():
    objects = rendered("production")
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    hpas = k8s.hpa_by_deployment(objects)
    assert sorted(deployments) == sorted(PLAN)
    for name, ((low, high), (cpu_req, cpu_lim), (mem_req, mem_lim)) in PLAN.items():
        containers = deployments[name]["spec"]["template"]["spec"]["containers"]
        [container] = [c for c in containers if c["name"] == name]
        assert container["resources"] == {
            "requests": {"cpu": cpu_req, "memory": mem_req},
            "limits": {"cpu": cpu_lim, "memory": mem_lim},
        }, name
        if name == "storage-server":
            assert name not in hpas
            assert deployments[name]["spec"]["replicas"] == low
            assert deployments[name]["spec"]["strategy"]["type"] == "Recreate"
        else:
            assert (hpas[name]["spec"]["minReplicas"], hpas[name]["spec"]["maxReplicas"]) == (low, high)
            assert deployments[name]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_hpa_alone_sets_the_replicas_of_what_it_scales(overlay):
    # An applied `spec.replicas` would reset a scaled-out Deployment to that count.
    objects = rendered(overlay)
    scaled = set(k8s.hpa_by_deployment(objects))
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert scaled and scaled <= set(deployments)
    assert [n for n in sorted(scaled) if "replicas" in deployments[n]["spec"]] == []
    # What no HPA scales says how many it runs (storage: one writer).
    assert [n for n in sorted(set(deployments) - scaled) if "replicas" not in deployments[n]["spec"]] == []


def test_staging_scales_less_than_production():
    def maxima(objects):
        return {name: hpa["spec"]["maxReplicas"] for name, hpa in k8s.hpa_by_deployment(objects).items()}

    staging, production = maxima(rendered("staging")), maxima(rendered("production"))
    assert all(staging[name] <= production[name] for name in production)
    assert k8s.namespace_of(rendered("staging")) != k8s.namespace_of(rendered("production"))
