"""The static checks on the rendered production manifests: every expectation is read from
those manifests, so a change to an overlay changes what is expected with it."""

from __future__ import annotations

import copy

import pytest

from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s.environments import environment
from sutra_deploy.k8s.manifests import hpa_by_deployment, render, stateful_names
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.kubectl import Kubectl
from sutra_deploy.verify.model import ESTIMATE, FAIL, NEEDS_CLUSTER, NOT_MEASURED
from sutra_deploy.verify.settings import VerifySettings
from sutra_deploy.verify.static import (
    needs_a_cluster,
    rollout_checks,
    scale_up_checks,
    scale_up_metric,
    scale_up_summary,
    zero_downtime_metric,
)

from ...standin.recording import REAL_KUBECTL

STACK = load_stack(PROJECT_DIR / "stack.toml")
SETTINGS = VerifySettings.from_settings()


@pytest.fixture(scope="module")
def production() -> list[dict]:
    kubectl = Kubectl(Commands(), str(REAL_KUBECTL))
    return render(kubectl, environment(DEFAULTS["sutra"], "production"), STACK)


def deployments(objects: list[dict]) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o.get("kind") == "Deployment"}


def rows(metrics) -> dict:
    return {m.name: m for m in metrics}


def test_every_stateless_deployment_rolls_out_without_taking_a_ready_pod_away(production):
    stateful = stateful_names(production)
    stateless = set(deployments(production)) - stateful
    pdb_labels = [
        p["spec"]["selector"]["matchLabels"] for p in production if p.get("kind") == "PodDisruptionBudget"
    ]
    guarded = {
        name
        for name, d in deployments(production).items()
        if name in stateless
        and any(
            labels.items() <= d["spec"]["template"]["metadata"]["labels"].items() for labels in pdb_labels
        )
    }
    checks = rollout_checks(production)
    assert stateful and stateless and guarded  # the manifests have all three to check
    assert set(checks.safe) == stateless and checks.unsafe == ()
    assert set(checks.pre_stop) == stateless
    assert set(checks.guarded) == guarded
    assert checks.stateful == tuple(sorted(stateful))


@pytest.mark.parametrize(
    "change",
    [
        lambda spec: spec["strategy"]["rollingUpdate"].update(maxUnavailable=1),
        lambda spec: spec["strategy"]["rollingUpdate"].pop("maxUnavailable"),  # Kubernetes' 25 %
        lambda spec: spec.update(strategy={"type": "Recreate"}),
        lambda spec: spec["template"]["spec"]["containers"][0].pop("readinessProbe"),
    ],
)
def test_a_deployment_that_may_take_a_ready_pod_away_cannot_be_zero_downtime(production, change):
    objects = copy.deepcopy(production)
    name = sorted(set(deployments(objects)) - stateful_names(objects))[0]
    change(deployments(objects)[name]["spec"])
    assert rollout_checks(objects).unsafe == (name,)
    on_cluster = zero_downtime_metric(objects)
    assert (on_cluster.status, on_cluster.value) == (FAIL, 1)
    assert on_cluster.how.startswith(f"cannot be zero-downtime: {name} may take a ready pod away first")
    # Locally it still needs a cluster, and says what the manifests already rule out.
    local = rows(needs_a_cluster(SETTINGS, objects, pulls=[], startups=[]))["zero-downtime deployments"]
    assert local.status == NEEDS_CLUSTER
    assert f"cannot be zero-downtime: {name} may take a ready pod away first" in local.how


def test_each_autoscalers_target_and_scale_up_window_are_read(production):
    hpas = hpa_by_deployment(production)
    checks = {c.deployment: c for c in scale_up_checks(production)}
    assert set(checks) == set(hpas)
    summary = scale_up_summary(list(checks.values()), SETTINGS.scale_up_seconds)
    for name, hpa in hpas.items():
        cpu = next(m["resource"] for m in hpa["spec"]["metrics"] if m["resource"]["name"] == "cpu")
        window = (hpa["spec"].get("behavior") or {}).get("scaleUp", {}).get("stabilizationWindowSeconds", 0)
        assert (checks[name].cpu_target, checks[name].window_seconds) == (
            cpu["target"]["averageUtilization"],
            window,
        )
        assert f"{name} CPU {checks[name].cpu_target} %, window {window} s" in summary
    slow = sorted(n for n, c in checks.items() if c.window_seconds >= SETTINGS.scale_up_seconds)
    if slow:
        assert f"alone keeps {', '.join(slow)} from meeting it" in summary
    else:
        assert "alone keeps" not in summary


def test_both_envs_share_the_checks_and_keep_their_own_statuses(production):
    rollouts = rollout_checks(production).summary()
    scale_ups = scale_up_summary(scale_up_checks(production), SETTINGS.scale_up_seconds)
    on_cluster = [zero_downtime_metric(production), scale_up_metric(production, SETTINGS)]
    local = rows(needs_a_cluster(SETTINGS, production, pulls=[], startups=[]))
    assert [(m.status, m.value) for m in on_cluster] == [(NOT_MEASURED, None)] * 2
    assert [m.status for m in local.values()] == [NEEDS_CLUSTER] * 3
    for rows_of_env in (rows(on_cluster), local):
        assert rollouts in rows_of_env["zero-downtime deployments"].how
        assert scale_ups in rows_of_env["HPA scale-up"].how
    targets = {c.deployment: c.cpu_target for c in scale_up_checks(production)}
    assert all(f"{n} {t}%" in local["cluster efficiency"].how for n, t in targets.items())


def test_locally_the_scale_up_is_an_estimate_from_the_slowest_pull_and_startup(production):
    local = rows(needs_a_cluster(SETTINGS, production, pulls=[2.5, 4.0], startups=[3.25, 1.0]))
    scale_up = local["HPA scale-up"]
    assert (scale_up.status, scale_up.value) == (ESTIMATE, round(4.0 + 3.25 + SETTINGS.hpa_sync_seconds, 1))
    assert scale_up.how.startswith("estimate, not a measurement")
    assert scale_up.target == f"< {SETTINGS.scale_up_seconds:g} s"
