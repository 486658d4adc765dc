from pathlib import Path

import pytest

from sutra_deploy.core.errors import SourceRootError, StackFileError, UnknownService
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.core.units import MB

from ...plan import PLAN_SERVICES, PLAN_SIZES_MB

STACK_FILE = PROJECT_DIR / "stack.toml"


@pytest.fixture(scope="module")
def stack():
    return load_stack(STACK_FILE)


def test_five_services_in_the_plans_build_order(stack):
    assert stack.service_names == (
        "storage-server",
        "sutra-api",
        "sutra-hybrid",
        "sutra-control",
        "sutra-client",
    )


def test_the_stack_file_encodes_the_plans_tables(stack):
    # The one conformance check of stack.toml against the plan; everything else reads the file.
    assert {
        s.name: (s.image, s.port.container, s.port.host, s.health.path) for s in stack.services
    } == PLAN_SERVICES
    assert {
        s.name: (s.budget.old_bytes // MB, s.budget.target_bytes // MB, s.budget.limit_bytes // MB)
        for s in stack.services
    } == PLAN_SIZES_MB


def test_budgets_are_read_in_megabytes_as_written(tmp_path, stack):
    api = stack.service("sutra-api")
    target_mb = api.budget.target_bytes // MB
    edited = write_stack(tmp_path, f"target = {target_mb},=>target = {target_mb - 7},")
    changed = load_stack(edited).service("sutra-api").budget
    assert changed.target_bytes == api.budget.target_bytes - 7 * MB
    assert changed.limit_bytes == api.budget.limit_bytes


def test_dockerfiles_per_version(stack):
    api = stack.service("sutra-api")
    assert api.dockerfile("v1") == "packages/sutra-api/Dockerfile"
    assert api.dockerfile("v2") == "packages/sutra-api/Dockerfile.optimized"
    storage = stack.service("storage-server")
    assert storage.dockerfile("v1") == storage.dockerfile("v2")
    assert api.ref("v2") == "sutra-api:v2"


def test_select_keeps_build_order_and_rejects_unknown_names(stack):
    picked = stack.select(["sutra-client", "storage-server"])
    assert [s.name for s in picked] == ["storage-server", "sutra-client"]
    assert stack.select(None) == stack.services
    with pytest.raises(UnknownService, match="unknown service 'sutra-apii'; known services: storage-server"):
        stack.select(["sutra-apii"])


def write_stack(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.toml"
    path.write_text(STACK_FILE.read_text().replace(*text.split("=>")) if "=>" in text else text)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            'limit = 200 }=>limit = "big" }',
            r"services.sutra-api.size_mb.limit: expected a size in MB greater than 0, got 'big'",
        ),
        ("limit = 200 }=>limit = -5 }", r"services.sutra-api.size_mb.limit: expected a size in MB"),
        ("target = 150,=>target = 250,", r"services.sutra-api.size_mb.target: is larger than the limit"),
        ('image = "sutra-api"=>imag = "sutra-api"', r"services.sutra-api.imag: unknown key"),
        ('image = "sutra-hybrid"\n=>', r"services.sutra-hybrid: missing key 'image'"),
        (
            'protocol = "tcp"=>protocol = "udp"',
            r"services.storage-server.health.protocol: expected 'http' or 'tcp'",
        ),
        ("build_order = 3=>build_order = 2", r"services.sutra-hybrid.build_order: same as sutra-api's"),
        ("host = 8001=>host = 8000", r"port.host: same as sutra-api's"),
        ('default_version = "v2"=>default_version = "v3"', r"stack.default_version: 'v3' is not in versions"),
        (
            'distill_from = "python"=>distill_from = "pyhton"',
            r"base_images.python-runtime.distill_from: no base image 'pyhton'",
        ),
    ],
)
def test_schema_errors_name_the_file_and_the_key(tmp_path, edit, message):
    path = write_stack(tmp_path, edit)
    with pytest.raises(StackFileError, match=message) as caught:
        load_stack(path)
    assert str(caught.value).startswith(str(path))


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "stack.toml"
    bad.write_text("[stack\nname = 1")
    with pytest.raises(StackFileError, match="not valid TOML"):
        load_stack(bad)
    with pytest.raises(StackFileError, match="not found"):
        load_stack(tmp_path / "nope.toml")


def test_unknown_version(stack):
    with pytest.raises(StackFileError, match="unknown version 'v3'"):
        stack.check_version("v3")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ('[services.sutra-client]=>[services."../x"]', r"services.'\.\./x': a service name is"),
        ('[services.sutra-client]=>[services."a;b"]', r"services.'a;b': a service name is"),
        ('[services.sutra-client]=>[services."x/y"]', r"services.'x/y': a service name is"),
        ("[services.sutra-client]=>[services.Client]", r"services.'Client': a service name is"),
        ('image = "sutra-api"=>image = "Bad Name"', r"services.sutra-api.image: .* got 'Bad Name'"),
        ('image = "sutra-api"=>image = "sutra-api:v2"', r"services.sutra-api.image: .* got 'sutra-api:v2'"),
        (
            'image = "sutra-api"=>image = ["sutra-api"]',
            r"services.sutra-api.image: expected a non-empty string",
        ),
        (
            'context = "packages/sutra-control"=>context = "../../etc"',
            r"services.sutra-control.context: expected a path inside the source root",
        ),
        (
            'context = "packages/sutra-control"=>context = "packages/../../x"',
            r"services.sutra-control.context: expected a path inside the source root",
        ),
        (
            'dockerfile = "packages/sutra-client/Dockerfile"=>dockerfile = "/etc/passwd"',
            r"services.sutra-client.dockerfile: expected a path inside the source root",
        ),
        ("limit = 200 }=>limit = nan }", r"services.sutra-api.size_mb.limit: .* got nan"),
        ("limit = 200 }=>limit = inf }", r"services.sutra-api.size_mb.limit: .* got inf"),
        (
            "limit = 200 }=>limit = 1e308 }",
            r"services.sutra-api.size_mb.limit: expected a size in MB of at most",
        ),
        ('path = "/health"=>path = "/health x"', r"services.sutra-api.health.path: expected a URL path"),
        ('versions = ["v1", "v2"]=>versions = ["v1", "v2 "]', r"stack.versions\[1\]: .* got 'v2 '"),
        ('versions = ["v1", "v2"]=>versions = ["v2", "v2"]', r"stack.versions: expected distinct versions"),
        ('[base_images.rust]=>[base_images."../x"]', r"base_images.'\.\./x': a base image key is"),
        ('[base_images.rust]=>[base_images."a b"]', r"base_images.'a b': a base image key is"),
        (
            'official = "debian:bookworm-slim"=>official = "debian:bookworm slim"',
            r"base_images.debian.official: the tag 'bookworm slim'",
        ),
        (
            'build_arg = "RUST_IMAGE"=>build_arg = "RUST IMAGE"',
            r"base_images.rust.build_arg: expected a Dockerfile ARG",
        ),
        (
            'distill_from = "python"=>distill_from = ["python"]',
            r"base_images.python-runtime.distill_from: expected",
        ),
        (
            '[base_images.rust]=>[base_images.rust]\nsuite = "--foo"',
            r"base_images.rust.suite: expected a Debian suite",
        ),
    ],
)
def test_names_paths_and_numbers_are_checked_at_load(tmp_path, edit, message):
    path = write_stack(tmp_path, edit)
    with pytest.raises(StackFileError, match=message) as caught:
        load_stack(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_a_stack_file_that_is_not_a_text_file(tmp_path):
    with pytest.raises(StackFileError, match="is a directory"):
        load_stack(tmp_path)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(STACK_FILE.read_text().replace("Sutra AI", "Sütra AI").encode("latin-1"))
    with pytest.raises(StackFileError, match="not UTF-8 text"):
        load_stack(latin)
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)
    with pytest.raises(StackFileError, match="cannot be read"):
        load_stack(loop)


def test_a_symlink_out_of_the_source_root_is_refused(tmp_path, stack):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "packages").mkdir(parents=True)
    outside.mkdir()
    control = stack.service("sutra-control")
    (root / "packages" / "sutra-control").symlink_to(outside)
    with pytest.raises(SourceRootError, match="sutra-control: context packages/sutra-control resolves to"):
        control.check_inside(root, "v2")
    (root / "packages" / "sutra-control").unlink()
    (root / "packages" / "sutra-control").mkdir()
    control.check_inside(root, "v2")  # inside, present or not
    stack.service("sutra-api").check_inside(root, "v2")
