"""Releases in a cluster, through the real `inv`, against the kubectl RECORDING STAND-IN (and,
where a registry is asked, the registry stand-in): what a deploy records on each Deployment,
`inv releases` reading a scripted history, `inv rollback --to RELEASE` moving to its digests.
No cluster, and for `inv` no Docker either: DOCKER_HOST is a socket nobody listens on.

Why a stand-in, with the real control plane in tests/cluster/test_rollback.py: the histories
here (revisions without annotations, as a `kubectl set image` by hand leaves them; digests only
the registry knows; many releases) would each take a series of real deploys to make, and the
exact calls a rollback makes are what is asserted."""

from __future__ import annotations

import json

import pytest

from sutra_deploy.core.errors import CommandFailed
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR, REFERENCE_ROOT
from sutra_deploy.core.stack import load_stack
from sutra_deploy.images.build import Builder, plan_builds
from sutra_deploy.k8s.environments import environment
from sutra_deploy.k8s.manifests import namespace_of, render
from sutra_deploy.k8s.rollout import annotate, apply, deployments_in_order
from sutra_deploy.ship.deploy import deploy_kubernetes
from sutra_deploy.ship.history import (
    CHANGE_CAUSE,
    COMMIT_ANNOTATION,
    DIGEST_ANNOTATION,
    RELEASE_ANNOTATION,
    REVISION,
    Releases,
    annotations_for,
    record_release,
)
from sutra_deploy.ship.release import Release
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.engine import Engine
from sutra_deploy.tools.kubectl import Kubectl

from ...kubeconfigs import kubeconfig
from ...standin.recording import REAL_KUBECTL, STANDIN, recording_cluster
from ...standin.registry import registry_standin
from ..test_tasks import assert_one_line_error, inv
from ..tools.test_kubectl_binary import PointedCommands, verdict

STACK = load_stack(PROJECT_DIR / "stack.toml")
STAGING = environment(DEFAULTS["sutra"], "staging")
RENDERED = render(Kubectl(Commands(), str(REAL_KUBECTL)), STAGING, STACK)
NAMESPACE = namespace_of(RENDERED)
ORDER = deployments_in_order(RENDERED, STACK.service_names)  # storage first, then the build order
COMMIT = "0123456789abcdef0123456789abcdef01234567"
RELEASES = ("rel-1", "rel-2", "rel-3")


def digest(release: int, service: int) -> str:
    return "sha256:" + f"{release:02x}{service:02x}" * 16


@pytest.fixture
def cluster(tmp_path):
    return recording_cluster(tmp_path)


@pytest.fixture
def no_docker(tmp_path) -> dict[str, str]:
    return {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}


def replica_set(service: str, index: int, revision: int, registry: str, release: str | None = None) -> dict:
    """A ReplicaSet as the Deployment controller leaves it: the Deployment's annotations copied,
    its revision, its owner, and the pod template with the image by digest."""
    image = f"{registry}/{STACK.service(service).image}@{digest(revision, index)}"
    release = release or RELEASES[revision - 1]
    notes = {REVISION: str(revision), **annotations_for(release, COMMIT, digest(revision, index))}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{service}-{revision:04d}abcd",
            "namespace": NAMESPACE,
            "annotations": notes,
            "creationTimestamp": f"2026-11-2{revision}T10:00:00Z",
            "labels": {"app.kubernetes.io/name": service, "pod-template-hash": f"{revision:04d}abcd"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": service,
                    "uid": f"uid-{service}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": 1 if revision == 3 else 0,
            "selector": {"matchLabels": {"app.kubernetes.io/name": service}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": service}},
                "spec": {"containers": [{"name": service, "image": image}]},
            },
        },
        "status": {"replicas": 1 if revision == 3 else 0},
    }


def deployment(service: str, index: int, registry: str) -> dict:
    image = f"{registry}/{STACK.service(service).image}@{digest(3, index)}"
    notes = {REVISION: "3", **annotations_for("rel-3", COMMIT, digest(3, index))}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": service, "namespace": NAMESPACE, "annotations": notes, "generation": 3},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": service}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": service}},
                "spec": {"containers": [{"name": service, "image": image}]},
            },
        },
    }


def history(registry: str, *, skip: tuple[str, int] | None = None) -> list[dict]:
    """Three revisions (rel-1, rel-2, rel-3) of every Deployment, the third running; ``skip``
    leaves one (service, revision) out, as if the controller had pruned it."""
    objects = []
    for index, name in enumerate(STACK.service_names):
        objects += [
            replica_set(name, index, revision, registry) for revision in (1, 2, 3) if (name, revision) != skip
        ]
        objects.append(deployment(name, index, registry))
    return objects


def staging(cluster, registry: str, no_docker: dict[str, str]) -> dict[str, str]:
    return {**cluster.env, **no_docker, "INVOKE_SUTRA_ENVIRONMENTS_STAGING_REGISTRY": registry}


# --- what a deploy records -------------------------------------------------------------------


def test_a_deploy_records_the_release_on_each_deployment_and_never_on_its_pod_template(cluster):
    objects = render(Kubectl(Commands(), str(REAL_KUBECTL)), STAGING, STACK)
    digests = {name: digest(1, i) for i, name in enumerate(STACK.service_names)}
    record_release(objects, Release("rel-1", COMMIT, "git commit"), digests)
    kubectl = Kubectl(Commands(env=cluster.env), str(STANDIN))
    cluster.script(context=STAGING.context)
    apply(kubectl, STAGING, objects, STACK.service_names)
    applied = [o for o in cluster.applied() if o["kind"] == "Deployment"]
    assert sorted(d["metadata"]["name"] for d in applied) == sorted(STACK.service_names)
    for d in applied:
        notes = d["metadata"]["annotations"]
        assert notes[RELEASE_ANNOTATION] == "rel-1"
        assert notes[COMMIT_ANNOTATION] == COMMIT
        assert notes[DIGEST_ANNOTATION] == digests[d["metadata"]["name"]]
        assert notes[CHANGE_CAUSE] == f"sutra release rel-1 (commit {COMMIT[:12]})"
        # On the template they would roll every Deployment on every release.
        template_notes = d["spec"]["template"]["metadata"].get("annotations") or {}
        assert not {RELEASE_ANNOTATION, COMMIT_ANNOTATION, DIGEST_ANNOTATION, CHANGE_CAUSE} & set(
            template_notes
        )
    # The stand-in still counts a revision for each Deployment the apply carried.
    assert {name: kubectl.revision(name, NAMESPACE) for name in STACK.service_names} == dict.fromkeys(
        STACK.service_names, 1
    )


def test_a_dry_deploy_builds_tags_and_pushes_the_release(tmp_path):
    config = kubeconfig(tmp_path / "kubeconfig", STAGING.context)
    commands = Commands(dry=True, env={"KUBECONFIG": str(config)})
    engine = Engine(commands)
    steps = plan_builds(STACK, STACK.services, STACK.default_version, REFERENCE_ROOT)
    deploy_kubernetes(
        STACK,
        engine,
        Kubectl(commands, str(REAL_KUBECTL)),
        STAGING,
        version=STACK.default_version,
        # What `inv build --tag r1` runs, without the base images (those need an engine).
        build=lambda: Builder(engine, release="r1").build_all(steps, jobs=1, no_cache=False),
        smoke_timeout=1,
        yes=False,
        release=Release("r1", None, "--tag"),
        floating=["v2", "latest"],
    )
    # A legacy build is printed as it runs: with the variable that asks for that builder.
    assert [line for line in commands.printed if " docker build " in line]
    assert all(line.startswith("DOCKER_BUILDKIT=0 ") for line in commands.printed if " docker build " in line)
    docker = [
        line.removeprefix("DOCKER_BUILDKIT=0 ")
        for line in commands.printed
        if line.removeprefix("DOCKER_BUILDKIT=0 ").startswith("docker ")
    ]
    registry = STAGING.registry
    for service in STACK.services:
        local, remote = service.reference(tag="r1"), service.reference(registry, tag="r1")
        [build] = [
            line for line in docker if line.startswith(f"docker build --force-rm --tag {service.ref('v2')}")
        ]
        assert f" --tag {local} " in build
        tags = [line for line in docker if line.startswith(f"docker tag {local} ")]
        assert tags == [
            f"docker tag {local} {service.reference(registry, tag=t)}" for t in ("r1", "v2", "latest")
        ]
        assert f"docker push {remote}" in docker
    # Built, then the release tagged and pushed; then, once it rolled out, the tags that move.
    verbs = [line.split()[1] for line in docker]
    moving = 2 * 2 * len(STACK.services)  # :v2 and :latest, tagged then pushed, per service
    assert verbs[:-moving] == sorted(verbs[:-moving], key=["build", "tag", "push"].index)
    assert verbs[-moving:] == ["tag"] * (moving // 2) + ["push"] * (moving // 2)
    first_push = next(line for line in docker if line.startswith("docker push"))
    assert first_push.endswith(":r1")


# --- inv releases ----------------------------------------------------------------------------


def registry_tags_for(pushed: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    return {f"sutra-ai/{image}": dict.fromkeys(tags, digest(9, 9)) for image, tags in pushed.items()}


def test_releases_reads_each_services_history_and_the_registrys_tags(cluster, no_docker):
    pushed = {s.image: ["latest", "rel-1", "rel-2", "rel-3", "v2"] for s in STACK.services}
    with registry_standin(registry_tags_for(pushed)) as registry:
        address = f"{registry.address}/sutra-ai"
        cluster.script(context=STAGING.context, objects=history(address))
        env = staging(cluster, address, no_docker)
        result = inv("releases", "--env", "staging", "--json", **env)
        table = inv("releases", "--env", "staging", **env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["env"] == "staging"
    assert [s["name"] for s in found["services"]] == list(STACK.service_names)
    for index, service in enumerate(found["services"]):
        assert service["current"] == 3
        assert service["revisions"] == [
            {
                "revision": revision,
                "release": f"rel-{revision}",
                "digest": digest(revision, index),
                "time": f"2026-11-2{revision}T10:00:00Z",
            }
            for revision in (1, 2, 3)
        ]
    assert found["registry_tags"] == {
        f"{registry.address}/sutra-ai/{image}": tags for image, tags in pushed.items()
    }
    # Read only: the context, then the ReplicaSets and Deployments of the namespace.
    calls = cluster.calls()
    assert ["get", "replicasets", "--namespace", NAMESPACE, "--output", "json"] in calls
    assert ["get", "deployments", "--namespace", NAMESPACE, "--output", "json"] in calls
    assert {c[0] for c in calls} <= {"config", "get"}
    assert table.returncode == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()]
    api = [row for row in rows if row[:1] == ["sutra-api"]]  # newest first, the running one marked
    index = STACK.service_names.index("sutra-api")
    assert [row[1:4] for row in api] == [
        ["3", "*", "rel-3"],
        ["2", "rel-2", digest(2, index)[:19]],
        ["1", "rel-1", digest(1, index)[:19]],
    ]
    assert f"{registry.address}/sutra-ai/sutra-api" in table.stdout


def test_a_revision_from_before_releases_shows_its_image_digest(cluster, no_docker):
    objects = history("r.io/x")
    for o in objects:  # nothing recorded: what a cluster deployed before releases looks like
        if o["kind"] == "ReplicaSet":
            o["metadata"]["annotations"] = {REVISION: o["metadata"]["annotations"][REVISION]}
    with registry_standin({}) as registry:
        cluster.script(context=STAGING.context, objects=objects)
        result = inv(
            "releases", "--env", "staging", "--json", **staging(cluster, registry.address, no_docker)
        )
    assert result.returncode == 0, result.stderr
    api = next(s for s in json.loads(result.stdout)["services"] if s["name"] == "sutra-api")
    index = STACK.service_names.index("sutra-api")
    assert [(r["release"], r["digest"]) for r in api["revisions"]] == [
        (None, digest(revision, index)) for revision in (1, 2, 3)
    ]
    assert json.loads(result.stdout)["registry_tags"] == {
        f"{registry.address}/{s.image}": [] for s in STACK.services
    }


def test_releases_in_another_context_is_refused(cluster, no_docker):
    cluster.script(context="kind-laptop")
    result = inv("releases", "--env", "staging", **cluster.env, **no_docker)
    assert_one_line_error(result, 2, "kubectl's current context is 'kind-laptop'")
    assert cluster.calls() == [["config", "current-context"]]


def test_an_empty_listing_says_so():
    assert Releases("staging").table() == "no releases found in staging"


# --- inv rollback --to RELEASE ---------------------------------------------------------------


def rollback_calls(cluster) -> list[list[str]]:
    return [c for c in cluster.calls() if c[0] in ("set", "annotate", "rollout")]


def expected_move(name: str, image: str, release: str, image_digest: str) -> list[list[str]]:
    deployment_ref = f"deployment/{name}"
    keys = [RELEASE_ANNOTATION, CHANGE_CAUSE, COMMIT_ANNOTATION, DIGEST_ANNOTATION]
    return [
        # The keys go first, so that neither ReplicaSet takes the other's release...
        ["annotate", deployment_ref, "--namespace", NAMESPACE, "--overwrite", *(f"{k}-" for k in keys)],
        ["set", "image", deployment_ref, f"{name}={image}", "--namespace", NAMESPACE],
        # ...then the revision that runs the image records it.
        [
            "annotate",
            deployment_ref,
            "--namespace",
            NAMESPACE,
            "--overwrite",
            f"{RELEASE_ANNOTATION}={release}",
            f"{CHANGE_CAUSE}=sutra rollback to release {release}",
            f"{DIGEST_ANNOTATION}={image_digest}",
        ],
    ]


def wait(name: str) -> list[str]:
    return [
        "rollout",
        "status",
        f"deployment/{name}",
        "--namespace",
        NAMESPACE,
        f"--timeout={STAGING.rollout_timeout}s",
    ]


def test_rollback_to_a_release_sets_the_digests_it_ran_and_waits(cluster, no_docker):
    with registry_standin({}) as registry:
        address = f"{registry.address}/sutra-ai"
        cluster.script(context=STAGING.context, objects=history(address))
        result = inv("rollback", "--env", "staging", "--to", "rel-1", **staging(cluster, address, no_docker))
        assert registry.asked == []  # the cluster's history had every digest
    assert result.returncode == 0, result.stderr
    moves = []
    for name in ORDER:
        index = STACK.service_names.index(name)
        image = f"{address}/{STACK.service(name).image}@{digest(1, index)}"
        moves += expected_move(name, image, "rel-1", digest(1, index))
    assert rollback_calls(cluster) == moves + [wait(name) for name in ORDER]
    assert not any(c[0] == "apply" for c in cluster.calls())


def test_rollback_of_one_service_moves_only_that_one(cluster, no_docker):
    with registry_standin({}) as registry:
        address = f"{registry.address}/sutra-ai"
        cluster.script(context=STAGING.context, objects=history(address))
        env = staging(cluster, address, no_docker)
        result = inv("rollback", "--env", "staging", "--to", "rel-2", "--service", "sutra-client", **env)
    assert result.returncode == 0, result.stderr
    index = STACK.service_names.index("sutra-client")
    image = f"{address}/sutra-client@{digest(2, index)}"
    assert rollback_calls(cluster) == [
        *expected_move("sutra-client", image, "rel-2", digest(2, index)),
        wait("sutra-client"),
    ]


def test_a_release_the_cluster_has_forgotten_comes_from_the_registry(cluster, no_docker):
    pruned = digest(7, 7)
    with registry_standin({"sutra-ai/sutra-client": {"rel-1": pruned}}) as registry:
        address = f"{registry.address}/sutra-ai"
        cluster.script(context=STAGING.context, objects=history(address, skip=("sutra-client", 1)))
        result = inv("rollback", "--env", "staging", "--to", "rel-1", **staging(cluster, address, no_docker))
        assert registry.asked == ["/v2/sutra-ai/sutra-client/manifests/rel-1"]
    assert result.returncode == 0, result.stderr
    [client] = [c for c in cluster.calls() if c[:3] == ["set", "image", "deployment/sutra-client"]]
    assert client[3] == f"sutra-client={address}/sutra-client@{pruned}"


def test_a_release_missing_for_one_service_changes_nothing(cluster, no_docker):
    with registry_standin({}) as registry:
        address = f"{registry.address}/sutra-ai"
        cluster.script(context=STAGING.context, objects=history(address, skip=("sutra-client", 1)))
        result = inv("rollback", "--env", "staging", "--to", "rel-1", **staging(cluster, address, no_docker))
    assert_one_line_error(
        result,
        2,
        f"error: release 'rel-1' not found for sutra-client in the cluster's history or {address}",
        "`inv releases`",
    )
    assert rollback_calls(cluster) == []  # nothing set, annotated or waited for
    assert {c[0] for c in cluster.calls()} <= {"config", "get"}


def test_rollback_to_a_version_still_means_the_generation(cluster, no_docker):
    with registry_standin({}) as registry:
        address = f"{registry.address}/sutra-ai"
        cluster.script(context=STAGING.context, objects=history(address))
        result = inv("rollback", "--env", "staging", "--to", "v1", **staging(cluster, address, no_docker))
        assert registry.asked == []
    assert result.returncode == 0, result.stderr
    sets = [c for c in cluster.calls() if c[:2] == ["set", "image"]]
    assert [c[3] for c in sets] == [f"{name}={address}/{STACK.service(name).image}:v1" for name in ORDER]
    assert not any(c[0] == "annotate" for c in cluster.calls())


def test_a_dry_rollback_to_a_release_prints_the_move_by_tag(cluster, no_docker):
    result = inv("--dry", "rollback", "--env", "staging", "--to", "rel-1", **cluster.env, **no_docker)
    assert result.returncode == 0, result.stderr
    # The context is checked, dry too (the confirmation's and the rollback's own check).
    assert cluster.calls() == [["config", "current-context"]] * 2
    # What a dry run cannot check (the cluster is not read) it says.
    assert (
        "[rollback] dry run: the cluster's history is not read, so neither whether rel-1 ran" in result.stderr
    )
    registry = STAGING.registry
    for name in ORDER:
        image = f"{registry}/{STACK.service(name).image}:rel-1"
        assert f"set image deployment/{name} {name}={image} --namespace {NAMESPACE}" in result.stdout


def test_kubectl_accepts_the_annotate_command_line(tmp_path):
    """The real kubectl, against a server that refuses connections (as test_kubectl_binary)."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text("")
        commands = PointedCommands(
            env={"HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)},
            pointing=(
                f"--server=http://127.0.0.1:{held.getsockname()[1]}",
                f"--kubeconfig={kubeconfig}",
                f"--cache-dir={tmp_path / 'cache'}",
                "--request-timeout=2s",
            ),
        )
        kubectl = Kubectl(commands, str(REAL_KUBECTL))
        for notes in (
            {RELEASE_ANNOTATION: None, CHANGE_CAUSE: None},
            {RELEASE_ANNOTATION: "rel-1", CHANGE_CAUSE: "sutra rollback to release rel-1"},
        ):
            with pytest.raises(CommandFailed):
                annotate(kubectl, "sutra-api", NAMESPACE, notes)
    for result in commands.results:
        assert verdict(result.stderr + result.stdout) == "refused", result.stderr
