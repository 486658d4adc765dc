import pytest

from sutra_deploy.errors import SutraError
from sutra_deploy.registry import validate_registry


@pytest.mark.parametrize(
    "registry",
    [
        "localhost:5000",
        "127.0.0.1:5000/sutra-ai",
        "your-registry.io/sutra-ai",
        "docker.io/sutraai",
        "r.io/a/b_c",
    ],
)
def test_valid_registries(registry):
    assert validate_registry(registry) == registry


@pytest.mark.parametrize(
    "registry",
    [
        "http://localhost:5000",
        "registry.io/Sutra",
        "registry.io/",
        "a b",
        "host:port",
        ":5000",
        "r.io/x:v2",
        "",
    ],
)
def test_malformed_registries_are_refused(registry):
    with pytest.raises(SutraError, match="is not a registry reference"):
        validate_registry(registry)
