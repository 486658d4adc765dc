"""What a cluster lacks, read from its discovery and OpenAPI schema: versions, kinds, fields.
The schema here is a small one in the API server's own shape; tests/cluster checks the real
overlays against a real server's."""

import pytest

from sutra_deploy.core.errors import ClusterLacks
from sutra_deploy.k8s.preflight import check, gaps, served_kinds

SCHEMA = {
    "definitions": {
        "io.k8s.api.apps.v1.Deployment": {
            "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
                "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"},
            },
        },
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
            "properties": {
                "name": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            }
        },
        "io.k8s.api.apps.v1.DeploymentSpec": {
            "properties": {
                "containers": {
                    "type": "array",
                    "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"},
                }
            }
        },
        "io.k8s.api.core.v1.Container": {
            "properties": {
                "name": {"type": "string"},
                "lifecycle": {"$ref": "#/definitions/io.k8s.api.core.v1.Handler"},
            }
        },
        "io.k8s.api.core.v1.Handler": {"properties": {"exec": {"type": "object"}}},
    }
}
DISCOVERY = {
    "apps/v1": {
        "resources": [
            {"name": "deployments", "kind": "Deployment"},
            {"name": "deployments/scale", "kind": "Scale"},
        ]
    },
    "policy/v1": None,  # the cluster answered 404
}


def deployment(name: str, **container) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"anything": "goes"}},
        "spec": {"containers": [{"name": "c", **container}]},
    }


def test_a_field_the_schema_lacks_is_named_with_its_path_and_type():
    [gap] = gaps([deployment("api", lifecycle={"sleep": {"seconds": 5}})], served_kinds(DISCOVERY), SCHEMA)
    assert gap.obj == "Deployment/api"
    assert gap.field == "spec.containers[0].lifecycle.sleep"
    assert gap.lacks == "io.k8s.api.core.v1.Handler has no field sleep"


def test_free_form_maps_and_known_fields_are_fine():
    assert (
        gaps([deployment("api", lifecycle={"exec": {"command": ["true"]}})], served_kinds(DISCOVERY), SCHEMA)
        == []
    )


def test_a_version_or_kind_the_cluster_does_not_serve():
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "api"}}
    hpa = {"apiVersion": "apps/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "api"}}
    found = [str(g) for g in gaps([pdb, hpa], served_kinds(DISCOVERY), SCHEMA)]
    assert found == [
        "PodDisruptionBudget/api (the cluster does not serve policy/v1)",
        "HorizontalPodAutoscaler/api (apps/v1 has no kind HorizontalPodAutoscaler in this cluster)",
    ]


def test_one_line_names_each_lack_once_with_how_many_objects_need_it():
    objects = [deployment(n, lifecycle={"sleep": {}}) for n in ("api", "hybrid", "client")]
    with pytest.raises(ClusterLacks) as refused:
        check(objects, served_kinds(DISCOVERY), SCHEMA)
    message = str(refused.value)
    assert "\n" not in message
    assert message.count("has no field sleep") == 1
    assert "Deployment/api at spec.containers[0].lifecycle.sleep, and 2 more" in message
    assert message.endswith("nothing was applied")
    assert refused.value.exit_code == 2
