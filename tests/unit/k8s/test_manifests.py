"""Rendering (the real `kubectl kustomize`), images in manifests, reading rendered objects."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import yaml

from sutra_deploy.core.errors import SutraError
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s.environments import environment, with_images
from sutra_deploy.k8s.manifests import (
    container_images,
    dump_manifests,
    hpa_by_deployment,
    image_overrides,
    images_by_deployment,
    namespace_of,
    parse_manifests,
    pushed_digests,
    render,
    require_valid,
    stateful_names,
)
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.engine import ImageInfo
from sutra_deploy.tools.kubectl import Kubectl

from ...standin.recording import REAL_KUBECTL

STACK = load_stack(PROJECT_DIR / "stack.toml")
KUBECTL = Kubectl(Commands(), str(REAL_KUBECTL))
STAGING = environment(DEFAULTS["sutra"], "staging")
DIGEST = "sha256:" + "a" * 64


def deployment(name: str, image: str, *, pvc: bool = False) -> dict:
    pod: dict = {"containers": [{"name": name, "image": image}]}
    if pvc:
        pod["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": name}}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"template": {"spec": pod}},
    }


def hpa(target: str, kind: str = "Deployment") -> dict:
    return {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"{target}-hpa", "namespace": "ns"},
        "spec": {"scaleTargetRef": {"kind": kind, "name": target}, "maxReplicas": 3},
    }


def deployment_images(objects: list[dict]) -> dict[str, str]:
    return {name: image for name, (_, image) in images_by_deployment(objects).items()}


def test_manifests_survive_a_dump_and_a_parse():
    objects = [deployment("sutra-api", "sutra-api:v2"), hpa("sutra-api")]
    assert parse_manifests(dump_manifests(objects)) == objects
    assert parse_manifests("---\n---\nkind: Namespace\n") == [{"kind": "Namespace"}]


def test_images_are_read_from_workloads():
    sidecar = deployment("sutra-api", "sutra-api:v2")
    sidecar["spec"]["template"]["spec"]["containers"].insert(0, {"name": "proxy", "image": "sidecar:1"})
    objects = [sidecar, deployment("storage-server", "storage:v2")]
    assert container_images(objects) == {"sidecar:1", "sutra-api:v2", "storage:v2"}
    # a Deployment's own container is the one named like it, wherever it is
    assert images_by_deployment(objects)["sutra-api"] == ("sutra-api", "sutra-api:v2")


def test_the_autoscaler_of_each_deployment_is_found_once():
    scaled = hpa("sutra-api")
    objects = [
        deployment("sutra-api", "a:1"),
        deployment("storage-server", "s:1"),
        scaled,
        hpa("db", "StatefulSet"),
    ]
    assert hpa_by_deployment(objects) == {"sutra-api": scaled}


def test_one_namespace_and_the_storage_tier():
    objects = [
        {"kind": "Namespace", "metadata": {"name": "ns"}},
        deployment("storage-server", "s:1", pvc=True),
        deployment("sutra-api", "a:1"),
    ]
    assert namespace_of(objects) == "ns"
    assert stateful_names(objects) == {"storage-server"}
    other = copy.deepcopy(objects[2])
    other["metadata"]["namespace"] = "elsewhere"
    with pytest.raises(SutraError, match=r"span namespaces \['elsewhere', 'ns'\]"):
        namespace_of([*objects, other])


def test_overrides_point_the_stacks_images_at_a_registry_and_tag():
    api, client = STACK.service("sutra-api"), STACK.service("sutra-client")
    rendered = {f"old.io/x/{api.image}:v2", f"{client.image}@{DIGEST}", "busybox:1.36"}
    entries = image_overrides(rendered, STACK.services, registry="r.io/team", tag="v7", digests={})
    assert entries == [
        {"name": f"old.io/x/{api.image}", "newName": api.reference("r.io/team"), "newTag": "v7"},
        {"name": client.image, "newName": client.reference("r.io/team"), "newTag": "v7"},
    ]  # busybox is not the stack's: left alone


def test_a_digest_wins_over_the_tag_and_nothing_given_changes_nothing():
    api = STACK.service("sutra-api")
    entries = image_overrides(
        {api.ref("v2")}, STACK.services, registry=None, tag="v7", digests={api.name: DIGEST}
    )
    assert entries == [{"name": api.image, "digest": DIGEST}]
    assert image_overrides({api.ref("v2")}, STACK.services, registry=None, tag=None, digests={}) == []


def test_render_resolves_every_image_through_the_stack():
    env = with_images(STAGING, registry="localhost:5000/team", tag="v7")
    api = STACK.service("sutra-api")
    images = deployment_images(render(KUBECTL, env, STACK, digests={api.name: DIGEST}))
    assert images == {
        s.name: s.reference(env.registry, tag=env.tag, digest=DIGEST if s is api else None)
        for s in STACK.services
    }


def test_render_without_overrides_is_the_overlay_itself():
    env = replace(STAGING, registry=None, tag=None)
    assert render(KUBECTL, env, STACK) == parse_manifests(KUBECTL.kustomize(STAGING.overlay))


def test_an_environment_without_an_overlay_is_an_error(tmp_path):
    env = replace(STAGING, overlay=tmp_path)
    with pytest.raises(SutraError, match=f"environment staging: no kustomization.yaml in {tmp_path}"):
        render(KUBECTL, env, STACK)


class Engine:
    """Only what pushed_digests asks of the engine: the image's RepoDigests."""

    def __init__(self, repo_digests: dict[str, tuple[str, ...]]) -> None:
        self.repo_digests = repo_digests

    def image(self, ref: str) -> ImageInfo | None:
        if ref not in self.repo_digests:
            return None
        return ImageInfo(ref, "sha256:id", 1, (), {}, repo_digests=self.repo_digests[ref])


def test_pushed_digests_are_those_from_the_environments_registry():
    api, hybrid = STACK.service("sutra-api"), STACK.service("sutra-hybrid")
    env = with_images(STAGING, registry="r.io/team", tag=None)
    engine = Engine(
        {
            api.ref(STACK.default_version): (
                api.reference("elsewhere.io", digest="sha256:" + "b" * 64),
                api.reference(env.registry, digest=DIGEST),
            ),
            hybrid.ref(STACK.default_version): (hybrid.reference("elsewhere.io", digest=DIGEST),),
        }
    )
    assert pushed_digests(engine, STACK, env) == {api.name: DIGEST}


def test_the_first_validation_problem_is_reported_with_a_count():
    broken = deployment("sutra-api", "sutra-api:latest")
    with pytest.raises(SutraError) as error:
        require_valid([broken], "staging")
    message = str(error.value)
    assert message.startswith("the staging manifests do not validate: Deployment/sutra-api: ")
    assert message.endswith("more; see `nox -s manifests`)")


def test_k8s_render_prints_the_resolved_manifests(standin):
    result = standin.run("k8s-render", "--env", "staging", "--registry", "localhost:5000/team", "--tag", "v7")
    assert result.returncode == 0, result.stderr
    images = deployment_images([doc for doc in yaml.safe_load_all(result.stdout) if doc])
    assert images == {s.name: s.reference("localhost:5000/team", tag="v7") for s in STACK.services}
    assert standin.cluster.calls() == []  # rendering is local
