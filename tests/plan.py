"""The deployment plan's resource table, as the tests check the manifests against it:
service -> (replicas (min, max), cpu (request, limit), memory (request, limit))."""

PLAN_RESOURCES = {
    "storage-server": ((1, 1), ("250m", "1000m"), ("256Mi", "1Gi")),
    "sutra-api": ((3, 50), ("250m", "1000m"), ("256Mi", "1Gi")),
    "sutra-hybrid": ((2, 10), ("500m", "2000m"), ("512Mi", "2Gi")),
    "sutra-control": ((1, 2), ("100m", "500m"), ("128Mi", "512Mi")),
    "sutra-client": ((2, 20), ("50m", "250m"), ("64Mi", "256Mi")),
}
