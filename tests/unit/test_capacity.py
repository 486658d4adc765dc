from sutra_deploy.capacity import capacity


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
