"""The deployment plan's tables, the specification the project's files are checked against.

These are the plan's own figures, kept here once for the conformance tests: stack.toml and
the manifests are the project's homes for them, and the other tests derive from those homes.
"""

# The mission's service table: service -> (image, container port, host port, health path).
PLAN_SERVICES = {
    "storage-server": ("sutra-storage-server", 50051, 50051, None),
    "sutra-api": ("sutra-api", 8000, 8000, "/health"),
    "sutra-hybrid": ("sutra-hybrid", 8000, 8001, "/ping"),
    "sutra-control": ("sutra-control", 5000, 5001, "/healthz"),
    "sutra-client": ("sutra-client", 8080, 8080, "/"),
}

# Image sizes in MB: service -> (before the plan, target, hard limit).
PLAN_SIZES_MB = {
    "storage-server": (24, 24, 24),
    "sutra-api": (703, 150, 200),
    "sutra-hybrid": (653, 400, 450),
    "sutra-control": (147, 100, 120),
    "sutra-client": (77, 77, 77),
}

# Resources: service -> (replicas (min, max), cpu (request, limit), memory (request, limit)).

PLAN_RESOURCES = {
    "storage-server": ((1, 1), ("250m", "1000m"), ("256Mi", "1Gi")),
    "sutra-api": ((3, 50), ("250m", "1000m"), ("256Mi", "1Gi")),
    "sutra-hybrid": ((2, 10), ("500m", "2000m"), ("512Mi", "2Gi")),
    "sutra-control": ((1, 2), ("100m", "500m"), ("128Mi", "512Mi")),
    "sutra-client": ((2, 20), ("50m", "250m"), ("64Mi", "256Mi")),
}
