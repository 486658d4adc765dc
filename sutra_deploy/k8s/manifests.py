"""An environment's manifests: rendered by `kubectl kustomize` with the images resolved,
parsed and dumped, read (images, namespace, autoscalers) and validated."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..core import yaml_text
from ..core.errors import SutraError
from ..core.references import image_parts, parse_reference
from ..core.stack import Service, Stack
from ..tools.files import owned_temporary_folder
from ..tools.kubectl import Kubectl
from . import stack_component
from .environments import Environment, require_overlay
from .policy import WORKLOAD_KINDS, violations

if TYPE_CHECKING:
    from ..tools.engine import Engine

log = logging.getLogger("sutra")

KUBERNETES_VERSION = "1.30.0"  # the schema version manifests are validated against


def parse_manifests(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def dump_manifests(objects: Sequence[dict]) -> str:
    return yaml_text.dump_all(objects)


# --- reading rendered objects -----------------------------------------------------------


def service_ports(objects: Sequence[dict]) -> dict[str, int]:
    """Each rendered Service's first port: where a port-forward or the service proxy reaches it."""
    return {
        o["metadata"]["name"]: int(o["spec"]["ports"][0]["port"])
        for o in objects
        if o.get("kind") == "Service" and (o.get("spec") or {}).get("ports")
    }


def container_images(objects: Sequence[dict]) -> set[str]:
    return {
        c["image"]
        for o in objects
        if o.get("kind") in WORKLOAD_KINDS
        for c in o["spec"]["template"]["spec"].get("containers", [])
    }


def images_by_deployment(objects: Sequence[dict]) -> dict[str, tuple[str, str]]:
    """deployment name -> (container, image) of its container of the same name, else its first."""
    images = {}
    for o in objects:
        if o.get("kind") == "Deployment":
            containers = o["spec"]["template"]["spec"]["containers"]
            named = next((c for c in containers if c["name"] == o["metadata"]["name"]), containers[0])
            images[o["metadata"]["name"]] = (named["name"], named["image"])
    return images


def hpa_by_deployment(objects: Sequence[dict]) -> dict[str, dict]:
    """Deployment name -> the HorizontalPodAutoscaler that scales it (Deployments without one
    are absent)."""
    return {
        o["spec"]["scaleTargetRef"]["name"]: o
        for o in objects
        if o.get("kind") == "HorizontalPodAutoscaler"
        and o["spec"]["scaleTargetRef"].get("kind") == "Deployment"
    }


def namespace_of(objects: Sequence[dict]) -> str:
    namespaces = {o["metadata"].get("namespace") for o in objects if o.get("kind") != "Namespace"} - {None}
    if len(namespaces) != 1:
        raise SutraError(f"the manifests span namespaces {sorted(namespaces)}; expected exactly one")
    return namespaces.pop()


def stateful_names(objects: Sequence[dict]) -> set[str]:
    """Workloads that mount a PersistentVolumeClaim (and their Services): the storage tier."""
    names = set()
    for o in objects:
        if o.get("kind") in WORKLOAD_KINDS:
            volumes = o["spec"]["template"]["spec"].get("volumes") or []
            if any("persistentVolumeClaim" in v for v in volumes):
                names.add(o["metadata"]["name"])
    return names


# --- images -------------------------------------------------------------------------------


def _repository(image: str) -> str:
    """What kustomize's `images[].name` matches: "r.io/x/sutra-api:v2" -> "r.io/x/sutra-api"."""
    return image_parts(image).name


def image_overrides(
    rendered_images: set[str],
    services: Sequence[Service],
    *,
    registry: str | None,
    tag: str | None,
    digests: Mapping[str, str],
    deployed: Mapping[str, tuple[str, str]] | None = None,
) -> list[dict]:
    """kustomize `images:` entries that point each service's image at the registry, tag or
    digest (``digests`` is by service name), so that it renders as ``Service.reference``.

    ``deployed`` (:func:`images_by_deployment`) names what each Deployment runs: a service whose
    manifests name another image (a user's stack, whose images have its own names, on k8s/base)
    gets its own image, in the registry the overlay names unless one is given."""
    owner = {service.image: service for service in services}
    by_repository = {}
    for image in sorted(rendered_images):
        repository = _repository(image)
        if repository.rpartition("/")[2] in owner:
            by_repository[repository] = owner[repository.rpartition("/")[2]]
    for service in services:
        if deployed and service.name in deployed:
            by_repository.setdefault(_repository(deployed[service.name][1]), service)
    entries = []
    for repository, service in sorted(by_repository.items()):  # others: left as the overlay has it
        entry: dict = {"name": repository}
        prefix, _, name = repository.rpartition("/")
        if registry or name != service.image:
            entry["newName"] = service.reference(registry or prefix or None)
        if service.name in digests:
            entry["digest"] = digests[service.name]
        elif tag:
            entry["newTag"] = tag
        if len(entry) > 1:
            # One more check at the last moment: what kustomize writes is a valid reference.
            marks = (("newTag", ":"), ("digest", "@"))
            pin = "".join(f"{mark}{entry[key]}" for key, mark in marks if key in entry)
            parse_reference(f"{entry.get('newName', repository)}{pin}", f"the {service.name} image")
            entries.append(entry)
    return entries


def pushed_digests(engine: Engine, stack: Stack, env: Environment) -> dict[str, str]:
    """service name -> the digest the engine recorded when it pushed the image to env's registry."""
    digests = {}
    for service in stack.services:
        ref = service.ref(env.tag or stack.default_version)
        info = engine.image(ref)
        for entry in info.repo_digests if info else ():
            parts = image_parts(entry)
            if env.registry and parts.digest and parts.name == service.reference(env.registry):
                digests[service.name] = parts.digest
        if service.name not in digests:
            log.info("[k8s] %s has no digest from %s (not pushed there): rendered by tag", ref, env.registry)
    return digests


# --- rendering ----------------------------------------------------------------------------


def render(
    kubectl: Kubectl, env: Environment, stack: Stack, digests: Mapping[str, str] | None = None
) -> list[dict]:
    """The environment's overlay made the stack's (a user's stack file brings its component: see
    :mod:`.stack_component`), with the services' images resolved to registry/name:tag or @digest
    (``digests`` by service name)."""
    require_overlay(env)
    objects = parse_manifests(kubectl.kustomize(env.overlay))
    overrides = image_overrides(
        container_images(objects),
        stack.services,
        registry=env.registry,
        tag=env.tag,
        digests=digests or {},
        deployed=images_by_deployment(objects),
    )
    component = None if stack.is_reference else stack_component_for(kubectl, stack)
    if not overrides and component is None:
        return objects
    # A kustomization that wraps the overlay: kustomize itself resolves the images.
    with owned_temporary_folder(env.name) as wrapper:
        kustomization: dict = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(env.overlay, wrapper)],
        }
        if component is not None:
            kustomization["components"] = [os.path.relpath(component, wrapper)]
        if overrides:
            kustomization["images"] = overrides
        (Path(wrapper) / "kustomization.yaml").write_text(yaml_text.dump(kustomization))
        return parse_manifests(kubectl.kustomize(Path(wrapper)))


def stack_component_for(kubectl: Kubectl, stack: Stack) -> Path | None:
    """The stack's component, brought up to date with the stack file and k8s/base; None when
    the stack asks for nothing the base does not already say."""
    base = parse_manifests(kubectl.kustomize(stack_component.BASE))
    return stack_component.write_component(stack, base, service_ports(base))


def render_environment(
    kubectl: Kubectl, env: Environment, stack: Stack, *, engine: Engine | None = None
) -> str:
    """The environment's final manifests as YAML; given the ``engine``, each image pinned to the
    digest the engine recorded when it pushed it (`inv k8s-render --digests`)."""
    digests = pushed_digests(engine, stack, env) if engine is not None else {}
    return dump_manifests(render(kubectl, env, stack, digests=digests))


# --- validating ---------------------------------------------------------------------------


def require_valid(objects: Sequence[dict], env_name: str) -> None:
    problems = validate(objects)
    if problems:
        more = f" (and {len(problems) - 1} more; see `nox -s manifests`)" if len(problems) > 1 else ""
        raise SutraError(f"the {env_name} manifests do not validate: {problems[0]}{more}")


def validate(objects: Sequence[dict], kubernetes_version: str = KUBERNETES_VERSION) -> list[str]:
    """Schema errors (OpenAPI, strict) and policy violations, one line each."""
    import kubernetes_validate  # loads its schemas: only when validating

    problems = []
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            problems.append(f"{where}: {path}: {error.message}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as error:
            problems.append(f"{where}: {error}")
    return problems + violations(objects)
