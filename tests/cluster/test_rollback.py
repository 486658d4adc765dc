"""`inv rollback` and `inv releases` against the real control plane: `--to RELEASE` takes each
service's digest from the real ReplicaSet history, a plain rollback is the Deployment
controller's undo, and `releases` reads the server's revisions even when the registry is away.
Runs after test_deploy.py, whose deploy left a release running in staging."""

from __future__ import annotations

import json

from sutra_deploy.tools.ports import free_port

from .conftest import inv
from .test_deploy import deployments, image_of, pods_of

SERVICES = ("storage-server", "sutra-api", "sutra-hybrid", "sutra-control", "sutra-client")


def releases(env: dict[str, str], *flags: str) -> dict:
    result = inv("releases", "--env", "staging", "--json", *flags, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def current_release(found: dict) -> set[str | None]:
    out = set()
    for service in found["services"]:
        [now] = [r for r in service["revisions"] if r["revision"] == service["current"]]
        out.add(now["release"])
    return out


def all_serving(cluster, images: dict[str, str]) -> None:
    for name, image in images.items():
        pods = [p for p in pods_of(cluster, name) if not p["metadata"].get("deletionTimestamp")]
        assert pods and all(p["spec"]["containers"][0]["image"] == image for p in pods), name
        assert all(p["status"]["containerStatuses"][0]["ready"] for p in pods), name


def test_rollback_to_a_release_and_undo_against_the_real_history(cluster, cluster_env, pushed):
    env = cluster_env("staging")
    found = releases(env)
    # One release across the environment, although the deploy before this one was rolled back
    # on its own: the Deployments it left alone carry their release again, not the failed one.
    assert len(current_release(found)) == 1, [(s["name"], s["revisions"]) for s in found["services"]]
    [release] = current_release(found)
    assert release, "the deploy before this test recorded its release on every Deployment"
    # The registry's tags beside the revisions: the release and the tags that moved to it.
    assert found["registry_tags"] and not found.get("registry_unread")
    for repository, tags in found["registry_tags"].items():
        assert repository.startswith(f"{pushed}/") and {release, "v2", "latest"} <= set(tags), repository
    by_digest = {name: image_of(d) for name, d in deployments(cluster).items()}
    assert all("@sha256:" in image for image in by_digest.values())

    # The same images by their floating tag: a new revision of every Deployment. `:v2` still
    # names this release, and serves: the deploy that failed before this test never moved it.
    moved = inv("k8s-apply", "--env", "staging", "--tag", "v2", env=env)
    assert moved.returncode == 0, moved.stderr[-3000:]
    by_tag = {name: image_of(d) for name, d in deployments(cluster).items()}
    repositories = {name: image.split("@")[0] for name, image in by_digest.items()}
    assert by_tag == {name: f"{repository}:v2" for name, repository in repositories.items()}
    assert all(repository.startswith(f"{pushed}/") for repository in repositories.values())
    all_serving(cluster, by_tag)

    back = inv("rollback", "--env", "staging", "--to", release, env=env)
    assert back.returncode == 0, back.stderr[-3000:]
    assert {name: image_of(d) for name, d in deployments(cluster).items()} == by_digest
    all_serving(cluster, by_digest)
    assert current_release(releases(env)) == {release}

    undone = inv("rollback", "--env", "staging", env=env)
    assert undone.returncode == 0, undone.stderr[-3000:]
    assert {name: image_of(d) for name, d in deployments(cluster).items()} == by_tag
    all_serving(cluster, by_tag)


def test_releases_reads_the_servers_revisions_when_the_registry_is_away(cluster_env):
    closed = f"127.0.0.1:{free_port()}/sutra-ai"
    found = releases(cluster_env("staging"), "--registry", closed)
    assert [s["name"] for s in found["services"]] == list(SERVICES)
    for service in found["services"]:
        numbers = [r["revision"] for r in service["revisions"]]
        # The digest form and the tag form: going back to one reuses its ReplicaSet.
        assert len(numbers) >= 2 and service["current"] in numbers, service
        assert any(r["release"] and r["digest"] for r in service["revisions"]), service
    assert found["registry_tags"] == {}
    assert closed in found["registry_unread"] and "refused" in found["registry_unread"]
