import pytest

from sutra_deploy.core.errors import SutraError
from sutra_deploy.k8s.quantities import format_bytes_binary, memory_bytes, millicores


@pytest.mark.parametrize(
    ("text", "value"), [("250m", 250), ("1", 1000), ("0.5", 500), ("2000m", 2000), (2, 2000)]
)
def test_cpu(text, value):
    assert millicores(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("256Mi", 256 * 2**20),
        ("1Gi", 2**30),
        ("1G", 10**9),
        ("512k", 512_000),
        ("1e3", 1000),
        ("128974848", 128974848),
    ],
)
def test_memory(text, value):
    assert memory_bytes(text) == value


def test_rejects_nonsense():
    with pytest.raises(SutraError, match="not a Kubernetes quantity"):
        memory_bytes("lots")


def test_binary_format():
    assert format_bytes_binary(2304 * 2**20) == "2.25Gi"
    assert format_bytes_binary(128 * 2**20) == "128Mi"
    assert format_bytes_binary(77 * 2**30) == "77Gi"
