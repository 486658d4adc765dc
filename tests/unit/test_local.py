import pytest

from sutra_deploy.errors import SutraError
from sutra_deploy.local import ServiceStatus, host_port, port_env, previous_version, status_table
from sutra_deploy.source import PROJECT_DIR
from sutra_deploy.stack import load_stack

STACK = load_stack(PROJECT_DIR / "stack.toml")


def test_port_variables_match_the_compose_files():
    names = {s.name: port_env(s) for s in STACK.services}
    assert names == {
        "storage-server": "SUTRA_STORAGE_SERVER_PORT",
        "sutra-api": "SUTRA_API_PORT",
        "sutra-hybrid": "SUTRA_HYBRID_PORT",
        "sutra-control": "SUTRA_CONTROL_PORT",
        "sutra-client": "SUTRA_CLIENT_PORT",
    }
    for file, version in (("docker-compose.yml", "v1"), ("docker-compose-v2.yml", "v2")):
        text = (PROJECT_DIR / "compose" / file).read_text()
        for service in STACK.services:
            assert f'"${{{port_env(service)}:-{service.port.host}}}:{service.port.container}"' in text
            assert f"image: {service.ref(version)}" in text


def test_host_port_comes_from_the_stack_unless_overridden():
    api = STACK.service("sutra-api")
    assert host_port(api, {}) == 8000
    assert host_port(api, {"SUTRA_API_PORT": "18000"}) == 18000
    with pytest.raises(SutraError, match="SUTRA_API_PORT='eighty' is not a port number"):
        host_port(api, {"SUTRA_API_PORT": "eighty"})


def test_rollback_goes_to_the_version_before_the_running_one():
    assert previous_version(STACK, "v2") == "v1"
    with pytest.raises(SutraError, match="v1 is the oldest version"):
        previous_version(STACK, "v1")
    with pytest.raises(SutraError, match="cannot tell which version is running"):
        previous_version(STACK, None)


def test_status_table():
    rows = [
        ServiceStatus(STACK.service("sutra-api"), "running", "healthy", 8000, 4.25),
        ServiceStatus(STACK.service("sutra-client"), "", "", 8080, None),
    ]
    lines = status_table(rows).splitlines()
    assert lines[0].split() == ["Service", "State", "Health", "Host", "port", "Seconds", "to", "healthy"]
    assert lines[2].split() == ["sutra-api", "running", "healthy", "8000", "4.2"]
    assert lines[3].split() == ["sutra-client", "absent", "-", "8080", "-"]
