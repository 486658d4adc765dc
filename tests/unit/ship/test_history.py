"""Release history from objects shaped like the API server's (apps/v1 ReplicaSet, Deployment)."""

import pytest

from sutra_deploy.core.errors import SutraError
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.ship.history import (
    CHANGE_CAUSE,
    COMMIT_ANNOTATION,
    DIGEST_ANNOTATION,
    RELEASE_ANNOTATION,
    REVISION,
    Releases,
    annotations_for,
    cluster_history,
    release_digests,
)

STACK = load_stack(PROJECT_DIR / "stack.toml")


def digest(n: int) -> str:
    return "sha256:" + f"{n:02x}" * 32


def replica_set(deployment: str, revision: int, release: str | None, n: int) -> dict:
    notes = {REVISION: str(revision)}
    if release:
        notes |= annotations_for(release, "c0ffee" * 7, digest(n))
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{deployment}-{n:08x}",
            "annotations": notes,
            "creationTimestamp": f"2026-11-2{revision}T10:00:00Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment}],
        },
        "spec": {
            "template": {
                "spec": {"containers": [{"name": deployment, "image": f"r.io/{deployment}@{digest(n)}"}]}
            }
        },
    }


def deployment(name: str, revision: int) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {REVISION: str(revision)}},
    }


def test_annotations_name_the_release_commit_and_digest_and_a_change_cause():
    notes = annotations_for("v1.4.0", "0123456789abcdef" * 2 + "01234567", digest(1))
    assert notes[RELEASE_ANNOTATION] == "v1.4.0"
    assert notes[COMMIT_ANNOTATION].startswith("0123456789ab")
    assert notes[DIGEST_ANNOTATION] == digest(1)
    assert notes[CHANGE_CAUSE] == "sutra release v1.4.0 (commit 0123456789ab)"


def test_a_history_of_three_revisions_per_service():
    sets = [
        replica_set(s.name, r, f"rel{r}", 10 * r + i) for i, s in enumerate(STACK.services) for r in (1, 2, 3)
    ]
    sets.append(replica_set("someone-else", 1, "rel1", 99))  # not ours: ignored
    history = cluster_history(sets, [deployment(s.name, 3) for s in STACK.services], STACK)
    assert [h.name for h in history] == list(STACK.service_names)
    for i, service in enumerate(history):
        assert service.current == 3
        assert [(r.revision, r.release) for r in service.revisions] == [(1, "rel1"), (2, "rel2"), (3, "rel3")]
        assert service.digest_of("rel2") == digest(20 + i)
        assert service.digest_of("rel9") is None


def test_a_revision_made_before_releases_were_recorded_keeps_its_image_digest():
    [service] = cluster_history([replica_set("sutra-api", 1, None, 7)], [deployment("sutra-api", 1)], STACK)
    assert (service.revisions[0].release, service.revisions[0].digest) == (None, digest(7))


def test_a_release_missing_for_a_service_is_refused_naming_it():
    sets = [
        replica_set(s.name, 1, "rel1", i) for i, s in enumerate(STACK.services) if s.name != "sutra-client"
    ]
    history = cluster_history(sets, [deployment(s.name, 1) for s in STACK.services], STACK)
    with pytest.raises(
        SutraError, match="release 'rel1' not found for sutra-client in the cluster's history"
    ):
        release_digests(history, STACK, "rel1", None)


def test_every_service_gets_its_digest_of_the_release():
    sets = [
        replica_set(s.name, r, f"rel{r}", 10 * r + i) for i, s in enumerate(STACK.services) for r in (1, 2)
    ]
    history = cluster_history(sets, [deployment(s.name, 2) for s in STACK.services], STACK)
    expected = {s.name: digest(10 + i) for i, s in enumerate(STACK.services)}
    assert release_digests(history, STACK, "rel1", None) == expected


def test_the_listing_has_one_table_per_source_with_a_blank_line_between():
    local = Releases("local", local_tags={"sutra-api": ["0123456789ab", "v1", "v2"], "sutra-client": []})
    assert local.table().splitlines()[2:] == ["sutra-api      0123456789ab, v1, v2", "sutra-client   -"]
    sets = [replica_set("sutra-api", 1, "rel1", 1)]
    cluster = Releases("staging", cluster_history(sets, [deployment("sutra-api", 1)], STACK))
    cluster.registry_tags = {"r.io/x/sutra-api": ["rel1", "v2"]}
    tables = cluster.table().split("\n\n")
    assert [t.split()[0] for t in tables] == ["Service", "Image"]
    assert "rel1, v2" in tables[1] and "sutra-api" in tables[0]
