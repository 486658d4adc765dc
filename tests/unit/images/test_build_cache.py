"""The build-input fingerprint: what a skipped build must not have missed."""

import os

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.images.build_cache import BuildCache, context_digest, fingerprint

DOCKERFILE = """\
ARG PYTHON_IMAGE=python:3.11-slim
ARG PYTHON_RUNTIME_IMAGE=gcr.io/distroless/python3
FROM ${PYTHON_IMAGE} AS deps
RUN echo deps
FROM deps AS test
FROM $PYTHON_RUNTIME_IMAGE
COPY --from=deps /opt /opt
"""


def context(tmp_path, ignore: str | None = None):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print('v1')\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "big.js").write_text("x")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    if ignore is not None:
        (tmp_path / ".dockerignore").write_text(ignore)
    return tmp_path, tmp_path / "Dockerfile"


def test_any_change_of_content_mode_name_or_dockerfile_changes_the_digest(tmp_path):
    root, dockerfile = context(tmp_path)
    first = context_digest(root, dockerfile)
    assert context_digest(root, dockerfile) == first
    (root / "app" / "main.py").write_text("print('v2')\n")
    second = context_digest(root, dockerfile)
    os.chmod(root / "app" / "main.py", 0o755)
    third = context_digest(root, dockerfile)
    (root / "app" / "main.py").rename(root / "app" / "other.py")
    fourth = context_digest(root, dockerfile)
    dockerfile.write_text("FROM scratch\nCOPY app /app\n")
    assert len({first, second, third, fourth, context_digest(root, dockerfile)}) == 5


def test_plainly_ignored_names_are_left_out_and_exceptions_turn_that_off(tmp_path):
    root, dockerfile = context(tmp_path, "**/node_modules\n")
    before = context_digest(root, dockerfile)
    (root / "node_modules" / "big.js").write_text("changed")
    assert context_digest(root, dockerfile) == before  # the builder never sees it either
    (root / ".dockerignore").write_text("**/node_modules\n!node_modules/keep.js\n")
    excepted = context_digest(root, dockerfile)
    (root / "node_modules" / "big.js").write_text("changed again")
    assert context_digest(root, dockerfile) != excepted  # not interpreted: everything counts


def test_a_base_image_that_is_missing_means_build(tmp_path):
    root, dockerfile = context(tmp_path)
    dockerfile.write_text(DOCKERFILE)
    assert fingerprint(root, dockerfile, {}, lambda image: None) is None
    ids = {"python:3.11-slim": "sha256:a", "gcr.io/distroless/python3": "sha256:b"}
    first = fingerprint(root, dockerfile, {}, ids.get)
    assert first is not None
    assert fingerprint(root, dockerfile, {}, {**ids, "python:3.11-slim": "sha256:c"}.get) != first
    assert fingerprint(root, dockerfile, {"X": "1"}, ids.get) != first
    dockerfile.write_bytes(b"FROM \xff\xfe\n")  # not text: the build itself says what is wrong
    assert fingerprint(root, dockerfile, {}, ids.get) is None


def test_the_cache_says_unchanged_only_for_the_same_inputs_and_the_same_image(tmp_path):
    cache = BuildCache(tmp_path / "builds.json")
    cache.record("sutra-api:v2", "inputs-1", "sha256:image-1")
    again = BuildCache(tmp_path / "builds.json")  # read back by the next run
    assert again.unchanged("sutra-api:v2", "inputs-1", "sha256:image-1")
    assert not again.unchanged("sutra-api:v2", "inputs-2", "sha256:image-1")
    assert not again.unchanged("sutra-api:v2", "inputs-1", "sha256:retagged-elsewhere")
    assert not again.unchanged("sutra-hybrid:v2", "inputs-1", "sha256:image-1")
    assert not again.unchanged("sutra-api:v2", None, "sha256:image-1")


def test_the_reference_source_tree_is_digested():
    # Not a timing test: it only shows the walk works on the real tree it is used on.
    root = PROJECT_DIR / "reference"
    assert len(context_digest(root, root / "packages/sutra-api/Dockerfile.optimized")) == 64
