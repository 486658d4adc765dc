"""What the manifests ask of a cluster: requests x minimum replicas, limits x maximum."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
import yaml

from sutra_deploy.core.errors import SutraError
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s.capacity import capacity, environment_capacity
from sutra_deploy.k8s.environments import environment
from sutra_deploy.k8s.manifests import hpa_by_deployment, render
from sutra_deploy.k8s.quantities import memory_bytes, millicores
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.kubectl import Kubectl

from ...plan import PLAN_RESOURCES as PLAN
from ...standin.recording import REAL_KUBECTL

STACK = load_stack(PROJECT_DIR / "stack.toml")
KUBECTL = Kubectl(Commands(), str(REAL_KUBECTL))
PRODUCTION = environment(DEFAULTS["sutra"], "production")


def deployment(name, replicas, requests, limits):
    return {
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "containers": [{"name": name, "resources": {"requests": requests, "limits": limits}}]
                }
            },
        },
    }


def hpa(name, low, high):
    return {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": high,
        },
    }


def test_minimum_is_requests_times_min_replicas_and_maximum_limits_times_max():
    report = capacity(
        [
            deployment(
                "storage-server", 1, {"cpu": "250m", "memory": "256Mi"}, {"cpu": "1000m", "memory": "1Gi"}
            ),
            deployment("sutra-api", 3, {"cpu": "250m", "memory": "256Mi"}, {"cpu": "1000m", "memory": "1Gi"}),
            hpa("sutra-api", 3, 50),
        ]
    )
    api = report.as_json()["services"][1]
    assert (api["min_replicas"], api["max_replicas"]) == (3, 50)
    assert api["min"] == {"cpu_millicores": 750, "memory_bytes": 3 * 256 * 2**20}
    assert api["max"] == {"cpu_millicores": 50_000, "memory_bytes": 50 * 2**30}
    assert report.as_json()["min"] == {"cpu_millicores": 1000, "memory_bytes": 4 * 256 * 2**20}
    assert report.as_json()["max"] == {"cpu_millicores": 51_000, "memory_bytes": 51 * 2**30}


def test_a_deployment_without_an_autoscaler_counts_its_replicas_or_one():
    resources = {"cpu": "1", "memory": "1Gi"}
    unscaled = deployment("storage-server", 2, resources, resources)
    [storage] = capacity([unscaled]).services
    assert (storage.min_replicas, storage.max_replicas) == (2, 2)
    del unscaled["spec"]["replicas"]
    [storage] = capacity([unscaled]).services
    assert (storage.min_replicas, storage.max_replicas) == (1, 1)


def test_services_come_in_the_given_order_then_by_name():
    resources = {"cpu": "1", "memory": "1Gi"}
    objects = [deployment(name, 1, resources, resources) for name in ("c", "b", "a")]
    assert [s.name for s in capacity(objects, order=["b"]).services] == ["b", "a", "c"]


def test_a_container_without_requests_or_limits_is_an_error():
    broken = deployment("sutra-api", 1, {"cpu": "1"}, {})
    del broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    with pytest.raises(
        SutraError, match="deployment sutra-api: container sutra-api sets no requests or limits"
    ):
        capacity([broken])


def test_capacity_is_computed_from_the_production_manifests(standin):
    result = standin.run("capacity", "--env", "production", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [s["name"] for s in report["services"]] == list(STACK.service_names)
    for name, ((low, high), (cpu_request, cpu_limit), (memory_request, memory_limit)) in PLAN.items():
        [service] = [s for s in report["services"] if s["name"] == name]
        assert (service["min_replicas"], service["max_replicas"]) == (low, high)
        assert service["min"] == {
            "cpu_millicores": low * millicores(cpu_request),
            "memory_bytes": low * memory_bytes(memory_request),
        }
        assert service["max"] == {
            "cpu_millicores": high * millicores(cpu_limit),
            "memory_bytes": high * memory_bytes(memory_limit),
        }
    for bound in ("min", "max"):
        for unit in ("cpu_millicores", "memory_bytes"):
            assert report[bound][unit] == sum(s[bound][unit] for s in report["services"])
    assert standin.cluster.calls() == []  # rendering is local


def test_a_larger_autoscaler_maximum_raises_only_that_services_maximum(tmp_path):
    api = STACK.service("sutra-api").name
    before = environment_capacity(KUBECTL, PRODUCTION, STACK)
    autoscaler = hpa_by_deployment(render(KUBECTL, PRODUCTION, STACK))[api]
    more = 5
    patch = [
        {"op": "replace", "path": "/spec/maxReplicas", "value": autoscaler["spec"]["maxReplicas"] + more}
    ]
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(PRODUCTION.overlay, tmp_path)],
                "patches": [
                    {
                        "target": {"kind": "HorizontalPodAutoscaler", "name": autoscaler["metadata"]["name"]},
                        "patch": yaml.safe_dump(patch),
                    }
                ],
            }
        )
    )
    after = environment_capacity(KUBECTL, replace(PRODUCTION, overlay=tmp_path), STACK)
    old, new = {s.name: s for s in before.services}, {s.name: s for s in after.services}
    assert new[api].max_replicas == old[api].max_replicas + more
    assert (
        after.maximum.cpu_millicores - before.maximum.cpu_millicores == more * old[api].limits.cpu_millicores
    )
    assert after.maximum.memory_bytes - before.maximum.memory_bytes == more * old[api].limits.memory_bytes
    assert after.minimum == before.minimum
    assert all(new[name] == old[name] for name in new if name != api)
