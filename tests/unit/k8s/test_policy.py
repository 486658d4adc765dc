import copy

from sutra_deploy.k8s.policy import violations

GOOD = {
    "kind": "Deployment",
    "metadata": {"name": "sutra-api"},
    "spec": {
        "template": {
            "spec": {
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                "containers": [
                    {
                        "name": "sutra-api",
                        "image": "registry.example.com/sutra-ai/sutra-api:v2",
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "256Mi"},
                            "limits": {"cpu": "1000m", "memory": "1Gi"},
                        },
                        "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
                        "livenessProbe": {"httpGet": {"path": "/health", "port": 8000}},
                        "securityContext": {"allowPrivilegeEscalation": False},
                    }
                ],
            }
        }
    },
}


def changed(edit) -> dict:
    obj = copy.deepcopy(GOOD)
    edit(obj["spec"]["template"]["spec"])
    return obj


def test_a_compliant_deployment_passes():
    assert violations([GOOD, {"kind": "Service", "metadata": {"name": "x"}}]) == []


def test_each_rule_names_the_container():
    container = lambda pod: pod["containers"][0]  # noqa: E731
    cases = {
        "no memory limits": lambda pod: container(pod)["resources"]["limits"].pop("memory"),
        "no livenessProbe": lambda pod: container(pod).pop("livenessProbe"),
        "runAsNonRoot is not true": lambda pod: pod["securityContext"].pop("runAsNonRoot"),
        "runs as uid 0": lambda pod: pod["securityContext"].update(runAsUser=0),
        "allowPrivilegeEscalation is not false": lambda pod: container(pod).pop("securityContext"),
        "uses :latest": lambda pod: container(pod).update(image="r.io/sutra-api:latest"),
        "has no tag or digest": lambda pod: container(pod).update(image="localhost:5000/sutra-api"),
    }
    for expected, edit in cases.items():
        [problem] = violations([changed(edit)])
        assert problem.startswith("Deployment/sutra-api container sutra-api: ")
        assert expected in problem


def test_digest_pinned_images_pass():
    obj = changed(lambda pod: pod["containers"][0].update(image="r.io/sutra-api@sha256:" + "a" * 64))
    assert violations([obj]) == []
