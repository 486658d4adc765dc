"""Kubernetes: render an environment's overlay, validate it, apply it in order, roll back.

Every kubectl call goes through the Runner. Only `kubectl kustomize` (local rendering) runs
in a dry run; everything that reads or changes a cluster is printed instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from .errors import CommandFailed, SutraError, failure_reason
from .policy import WORKLOAD_KINDS, violations
from .runner import Runner
from .source import PROJECT_DIR

log = logging.getLogger("sutra")

KUBERNETES_VERSION = "1.30.0"  # the schema version manifests are validated against


class WrongContext(SutraError):
    pass


class RolloutFailed(SutraError):
    exit_code = 1


@dataclass(frozen=True)
class Environment:
    name: str
    overlay: Path
    context: str | None  # the kube context this environment lives in
    registry: str | None  # None: keep the overlay's own image names
    tag: str | None
    confirm: bool  # ask before changing anything (production)
    rollout_timeout: int


def environment(settings: Mapping, name: str) -> Environment:
    environments = settings.get("environments") or {}
    if name not in environments:
        known = ", ".join(sorted(environments))
        raise SutraError(f"unknown environment {name!r}; configured environments: {known}")
    raw = environments[name]
    overlay = Path(raw.get("overlay") or f"k8s/overlays/{name}")
    return Environment(
        name=name,
        overlay=overlay if overlay.is_absolute() else PROJECT_DIR / overlay,
        context=raw.get("context"),
        registry=raw.get("registry"),
        tag=raw.get("tag"),
        confirm=bool(raw.get("confirm", False)),
        rollout_timeout=int(raw.get("rollout_timeout", 300)),
    )


def with_images(env: Environment, *, registry: str | None, tag: str | None) -> Environment:
    """The environment with the registry or tag given on the command line, if any."""
    return replace(env, registry=registry or env.registry, tag=tag or env.tag)


class Kubectl:
    def __init__(self, runner: Runner, executable: str = "kubectl") -> None:
        self.runner = runner
        self.executable = executable

    def _run(self, *args: str, server: bool = True, **kwargs):
        # Anything but local rendering talks to a cluster: printed, not run, when dry.
        return self.runner.run([self.executable, *args], mutates=server, **kwargs)

    def kustomize(self, directory: Path) -> str:
        return self._run("kustomize", str(directory), server=False).stdout

    def current_context(self) -> str | None:
        result = self._run("config", "current-context", check=False)
        if self.runner.dry:
            return None
        if not result.ok:
            raise WrongContext(f"kubectl has no current context ({failure_reason(result.stderr)})")
        return result.stdout.strip()

    def apply(self, manifest: str, what: str) -> None:
        log.info("[k8s] apply %s", what)
        self._run("apply", "--filename", "-", input=manifest)

    def rollout_status(self, deployment: str, namespace: str, timeout: int) -> None:
        self._run(
            "rollout", "status", f"deployment/{deployment}", "--namespace", namespace, f"--timeout={timeout}s"
        )

    def rollout_undo(self, deployment: str, namespace: str, to_revision: int | None = None) -> None:
        revision = [f"--to-revision={to_revision}"] if to_revision else []
        self._run("rollout", "undo", f"deployment/{deployment}", "--namespace", namespace, *revision)

    def revision(self, deployment: str, namespace: str) -> int | None:
        """The Deployment's current rollout revision; None if it does not exist (yet)."""
        path = "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        result = self._run(
            "get", f"deployment/{deployment}", "--namespace", namespace, "--output", path, check=False
        )
        text = result.stdout.strip()
        return int(text) if result.ok and text.isdigit() else None

    def set_image(self, deployment: str, container: str, image: str, namespace: str) -> None:
        self._run(
            "set", "image", f"deployment/{deployment}", f"{container}={image}", "--namespace", namespace
        )

    def get(self, kinds: str, namespace: str) -> str:
        return self._run("get", kinds, "--namespace", namespace).stdout

    @contextlib.contextmanager
    def port_forward(self, service: str, namespace: str, local_port: int, remote_port: int) -> Iterator[None]:
        argv = [
            self.executable,
            "port-forward",
            f"svc/{service}",
            f"{local_port}:{remote_port}",
            "--namespace",
            namespace,
            "--address",
            "127.0.0.1",
        ]
        if self.runner.dry:
            self.runner.run(argv, mutates=True)
            yield
            return
        # stderr to a file: kubectl logs every failed connection, and a pipe nobody reads fills up.
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                [self.runner.resolve(self.executable), *argv[1:]],
                stdout=subprocess.DEVNULL,
                stderr=errors,
                env={**os.environ, **self.runner.env},
            )
            try:
                yield
            finally:
                if process.poll() is not None:
                    errors.seek(0)
                    log.info(
                        "[k8s] port-forward to svc/%s ended early: %s",
                        service,
                        failure_reason(errors.read().decode(errors="replace")),
                    )
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# --- rendering --------------------------------------------------------------------------


def parse_manifests(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def dump_manifests(objects: Sequence[dict]) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)


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


def pushed_digests(docker, stack, env: Environment) -> dict[str, str]:
    """image name -> the digest the engine recorded when it pushed it to env's registry."""
    digests = {}
    for service in stack.services:
        ref = service.ref(env.tag or stack.default_version)
        info = docker.runner.run(
            ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref], check=False
        )
        for entry in yaml.safe_load(info.stdout or "[]") or []:
            repository, _, digest = entry.partition("@")
            if env.registry and repository == f"{env.registry}/{service.image}":
                digests[service.image] = digest
        if service.image not in digests:
            log.info("[k8s] %s has no digest from %s (not pushed there): rendered by tag", ref, env.registry)
    return digests


def image_repository(image: str) -> str:
    """ "r.io/x/sutra-api:v2" -> "r.io/x/sutra-api"; digests too."""
    image = image.split("@", 1)[0]
    last = image.rpartition("/")[2]
    return image.rpartition(":")[0] if ":" in last else image


def image_overrides(
    rendered_images: set[str], *, registry: str | None, tag: str | None, digests: Mapping[str, str]
) -> list[dict]:
    """kustomize `images:` entries that point every image at the registry, tag or digest."""
    entries = []
    for image in sorted(rendered_images):
        repository = image_repository(image)
        base_name = repository.rpartition("/")[2]
        entry: dict = {"name": repository}
        if registry:
            entry["newName"] = f"{registry}/{base_name}"
        if base_name in digests:
            entry["digest"] = digests[base_name]
        elif tag:
            entry["newTag"] = tag
        if len(entry) > 1:
            entries.append(entry)
    return entries


def render(kubectl: Kubectl, env: Environment, digests: Mapping[str, str] | None = None) -> list[dict]:
    """The environment's overlay, with images resolved to registry/name:tag or @digest."""
    if not (env.overlay / "kustomization.yaml").is_file():
        raise SutraError(f"environment {env.name}: no kustomization.yaml in {env.overlay}")
    objects = parse_manifests(kubectl.kustomize(env.overlay))
    overrides = image_overrides(
        container_images(objects), registry=env.registry, tag=env.tag, digests=digests or {}
    )
    if not overrides:
        return objects
    # A kustomization that wraps the overlay: kustomize itself resolves the images.
    with tempfile.TemporaryDirectory(prefix=f"sutra-{env.name}-") as wrapper:
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(env.overlay, wrapper)],
            "images": overrides,
        }
        (Path(wrapper) / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
        return parse_manifests(kubectl.kustomize(Path(wrapper)))


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


# --- applying ---------------------------------------------------------------------------


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


def apply_groups(objects: Sequence[dict]) -> list[tuple[str, list[dict]]]:
    """The plan's order: the namespace, then storage, then the workloads, then autoscaling."""
    stateful = stateful_names(objects)
    groups: dict[str, list[dict]] = {"namespace": [], "storage": [], "workloads": [], "autoscalers": []}
    for o in objects:
        kind, name = o.get("kind"), o["metadata"]["name"]
        if kind == "Namespace":
            groups["namespace"].append(o)
        elif kind == "PersistentVolumeClaim" or name in stateful:
            groups["storage"].append(o)
        elif kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
            groups["autoscalers"].append(o)
        else:
            groups["workloads"].append(o)
    return [(label, members) for label, members in groups.items() if members]


def deployments_in_order(objects: Sequence[dict], order: Sequence[str] = ()) -> list[str]:
    """Storage first, then the rest in ``order`` (the stack's build order), then by name."""
    stateful = stateful_names(objects)
    rank = {name: i for i, name in enumerate(order)}
    names = [o["metadata"]["name"] for o in objects if o.get("kind") == "Deployment"]
    return sorted(names, key=lambda n: (n not in stateful, rank.get(n, len(rank)), n))


def check_context(kubectl: Kubectl, env: Environment) -> None:
    """Stop before anything is applied when kubectl points at another cluster."""
    if env.context is None:
        raise WrongContext(
            f"environment {env.name} names no kube context; set sutra.environments.{env.name}.context"
        )
    current = kubectl.current_context()
    if current is not None and current != env.context:
        raise WrongContext(
            f"kubectl's current context is {current!r} but {env.name} lives in {env.context!r}; "
            f"run `kubectl config use-context {env.context}` and try again"
        )


def hpa_specs(objects: Sequence[dict]) -> dict[str, dict]:
    """Deployment name -> the spec of the HorizontalPodAutoscaler that scales it."""
    return {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"]
        for o in objects
        if o.get("kind") == "HorizontalPodAutoscaler"
        and o["spec"]["scaleTargetRef"].get("kind") == "Deployment"
    }


def without_hpa_replicas(objects: Sequence[dict]) -> list[dict]:
    """The objects with `spec.replicas` dropped from Deployments an HPA scales.

    Applying a replica count resets a live Deployment to it: an api the HPA has grown to 30
    pods would drop to the manifest's 3 on every deploy. Without it, the HPA keeps the count
    (and raises a new Deployment to its minimum within one sync period).
    """
    scaled = {
        o["spec"]["scaleTargetRef"]["name"]
        for o in objects
        if o.get("kind") == "HorizontalPodAutoscaler"
        and o["spec"]["scaleTargetRef"].get("kind") == "Deployment"
    }
    result = []
    for o in objects:
        if o.get("kind") == "Deployment" and o["metadata"]["name"] in scaled and "replicas" in o["spec"]:
            o = {**o, "spec": {k: v for k, v in o["spec"].items() if k != "replicas"}}
        result.append(o)
    return result


def apply(kubectl: Kubectl, env: Environment, objects: Sequence[dict], order: Sequence[str] = ()) -> str:
    """Apply in order and wait for every rollout (in ``order``); returns the namespace."""
    check_context(kubectl, env)
    namespace = namespace_of(objects)
    for label, members in apply_groups(without_hpa_replicas(objects)):
        kubectl.apply(dump_manifests(members), f"{label} ({len(members)} objects)")
    wait_for_rollouts(kubectl, deployments_in_order(objects, order), namespace, env.rollout_timeout)
    return namespace


def wait_for_rollouts(kubectl: Kubectl, deployments: Sequence[str], namespace: str, timeout: int) -> None:
    for name in deployments:
        log.info("[k8s] waiting for deployment/%s", name)
        try:
            kubectl.rollout_status(name, namespace, timeout)
        except CommandFailed as error:
            raise RolloutFailed(
                f"rollout of deployment/{name} did not finish: {failure_reason(error.output)}"
            ) from None


def rollback(
    kubectl: Kubectl,
    env: Environment,
    deployments: Sequence[str],
    namespace: str,
    *,
    to_image: Mapping[str, tuple[str, str]] | None = None,
    revisions: Mapping[str, int | None] | None = None,
) -> list[str]:
    """Roll deployments back, then wait for those that moved; returns them.

    With ``revisions`` (each Deployment's revision before a deploy), only what that deploy
    changed goes back, to exactly that revision: a Deployment the deploy left alone keeps
    running, one it created has nothing to go back to. Otherwise each goes back one rollout,
    or to the given (container, image). A rollback that kubectl refuses is logged and the
    others still go back.
    """
    check_context(kubectl, env)
    moved = []
    for name in deployments:
        target = None
        if revisions is not None:
            target = revisions.get(name)
            if target is None:
                log.info("[k8s] deployment/%s is new: nothing to roll back to", name)
                continue
            if kubectl.revision(name, namespace) == target:
                log.info("[k8s] deployment/%s is unchanged at revision %s", name, target)
                continue
        try:
            if to_image and name in to_image:
                container, image = to_image[name]
                kubectl.set_image(name, container, image, namespace)
            else:
                kubectl.rollout_undo(name, namespace, to_revision=target)
        except CommandFailed as error:
            log.info("[k8s] could not roll back deployment/%s: %s", name, failure_reason(error.output))
            continue
        moved.append(name)
    wait_for_rollouts(kubectl, moved, namespace, env.rollout_timeout)
    return moved
