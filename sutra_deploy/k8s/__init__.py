"""Kubernetes: an environment's overlay rendered, validated, applied in order, rolled back.

- :mod:`.environments`: which overlay, kube context, registry; confirming a change
- :mod:`.kubectl`: every kubectl command line
- :mod:`.manifests`: rendering through kustomize, images, validation (schemas and :mod:`.policy`)
- :mod:`.stack_component`: a user's stack file in the manifests (ports, probes, environment)
- :mod:`.rollout`: the context check, applying in order, waiting, rolling back
- :mod:`.capacity`: what the manifests ask of a cluster (with :mod:`.quantities`)
"""

from ..tools.kubectl import Kubectl
from .capacity import CapacityReport, capacity, environment_capacity
from .environments import Environment, confirm, environment, with_images
from .manifests import (
    KUBERNETES_VERSION,
    container_images,
    dump_manifests,
    hpa_by_deployment,
    images_by_deployment,
    namespace_of,
    parse_manifests,
    pushed_digests,
    render,
    render_environment,
    require_valid,
    stack_component_for,
    validate,
)
from .rollout import (
    apply,
    apply_environment,
    check_cluster_serves,
    check_context,
    deployments_in_order,
    diff_environment,
    rollback,
    rollback_environment,
)

__all__ = [
    "KUBERNETES_VERSION",
    "CapacityReport",
    "Environment",
    "Kubectl",
    "apply",
    "apply_environment",
    "capacity",
    "check_cluster_serves",
    "check_context",
    "confirm",
    "container_images",
    "deployments_in_order",
    "diff_environment",
    "dump_manifests",
    "environment",
    "environment_capacity",
    "hpa_by_deployment",
    "images_by_deployment",
    "namespace_of",
    "parse_manifests",
    "pushed_digests",
    "render",
    "render_environment",
    "require_valid",
    "rollback",
    "rollback_environment",
    "stack_component_for",
    "validate",
    "with_images",
]
