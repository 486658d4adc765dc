import os
import re

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from sutra_deploy.core.errors import SutraError
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s.capacity import capacity
from sutra_deploy.k8s.environments import environment
from sutra_deploy.k8s.manifests import render
from sutra_deploy.local.leftovers import OWNER_PID_LABEL
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.kubectl import Kubectl
from sutra_deploy.verify.limits import check_fits, compose_override, container_limits, parse_overrides

STACK = load_stack(PROJECT_DIR / "stack.toml")


@pytest.fixture(scope="module")
def production():
    kubectl = Kubectl(Commands(), "kubectl")
    objects = render(kubectl, environment(DEFAULTS["sutra"], "production"), STACK)
    return capacity(objects, order=STACK.service_names)


def test_limits_are_the_manifests_own(production):
    limits = container_limits(production, host_cpus=64)
    for service in production.services:
        entry = limits[service.name]
        assert entry.memory_bytes == service.limits.memory_bytes
        assert entry.cpu_millicores == service.limits.cpu_millicores
        assert entry.cpu_request_millicores == service.requests.cpu_millicores
        assert not entry.clamped


def test_a_cpu_limit_above_the_host_is_clamped_and_says_so(production):
    biggest = max(production.services, key=lambda s: s.limits.cpu_millicores)
    host_cpus = biggest.limits.cpu_millicores // 1000 - 1 or 1
    entry = container_limits(production, host_cpus=host_cpus)[biggest.name]
    assert entry.cpu_millicores == host_cpus * 1000
    assert entry.clamped
    assert "clamped to the host's cores" in entry.describe()


def test_a_what_if_replaces_one_service_only(production):
    limits = container_limits(production, host_cpus=64, memory={"sutra-api": 256 * 2**20})
    assert limits["sutra-api"].memory_bytes == 256 * 2**20
    assert limits["sutra-api"].overridden == ("memory",)
    others = {s.name: s.limits.memory_bytes for s in production.services if s.name != "sutra-api"}
    assert {n: limits[n].memory_bytes for n in others} == others


def test_overrides_are_checked(production):
    names = STACK.service_names
    assert parse_overrides(["sutra-api=256Mi"], "memory", names) == {"sutra-api": 256 * 2**20}
    assert parse_overrides(["sutra-hybrid=1500m"], "cpu", names) == {"sutra-hybrid": 1500}
    for bad, message in (
        ("sutra-api", "expected SERVICE=QUANTITY"),
        ("nope=1Gi", "unknown service 'nope'"),
        ("sutra-api=lots", "'lots' is no memory quantity; e.g. sutra-api=256Mi"),
        ("sutra-api=1..5Gi", "'1..5Gi' is no memory quantity"),
        ("sutra-api=0", "less than the 6Mi the engine can give a container"),
        ("sutra-api=1", "a number without a unit is bytes"),
    ):
        with pytest.raises(SutraError, match=re.escape(message)):
            parse_overrides([bad], "memory", names)
    with pytest.raises(SutraError, match=re.escape("'.' is no cpu quantity; e.g. sutra-api=500m")):
        parse_overrides(["sutra-api=."], "cpu", names)


def test_a_what_if_asks_for_no_more_than_the_machine_has():
    check_fits({"sutra-api": 2**30}, {"sutra-api": 2000}, host_memory=2**31, host_cpus=2)
    with pytest.raises(SutraError, match=r"--memory sutra-api=\d+Gi: more than this machine.s 2Gi of memory"):
        check_fits({"sutra-api": int(1.5e30)}, {}, host_memory=2**31, host_cpus=2)
    with pytest.raises(SutraError, match=r"--cpu sutra-api=3000m: more than this machine's 2 CPUs"):
        check_fits({}, {"sutra-api": 3000}, host_memory=2**31, host_cpus=2)


@given(st.text(max_size=30))
def test_any_quantity_text_is_a_number_or_one_line(text):
    """Hypothesis: whatever follows `sutra-api=`, a value or our one-line error, nothing else."""
    for kind in ("memory", "cpu"):
        try:
            value = parse_overrides([f"sutra-api={text}"], kind, STACK.service_names)
        except SutraError as error:
            assert "\n" not in str(error) and str(error).startswith(f"--{kind} ")
        else:
            assert value["sutra-api"] >= (6 * 2**20 if kind == "memory" else 10)


def test_the_compose_override_caps_memory_without_swap_and_cpus(production):
    limits = container_limits(production, host_cpus=2)
    services = yaml.safe_load(compose_override(limits))["services"]
    assert set(services) == set(STACK.service_names)
    for name, entry in limits.items():
        assert services[name]["mem_limit"] == services[name]["memswap_limit"] == entry.memory_bytes
        assert services[name]["cpus"] == entry.cpu_millicores / 1000 <= 2
    # Its owner on every container and on the network compose makes before them.
    document = yaml.safe_load(compose_override(limits))
    network = document["networks"]["default"]["labels"]
    assert network[OWNER_PID_LABEL] == str(os.getpid())
    assert all(services[name]["labels"] == network for name in services)
