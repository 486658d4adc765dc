from pathlib import Path

import pytest

from sutra_deploy.errors import StackFileError, UnknownService
from sutra_deploy.source import PROJECT_DIR
from sutra_deploy.stack import load_stack
from sutra_deploy.units import MB

from ..plan import PLAN_SERVICES, PLAN_SIZES_MB

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
