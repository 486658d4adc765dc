"""The plan's success metrics, measured: locally under the plan's limits, or on a cluster.

- :mod:`.model`: the metrics and the report (table, JSON, exit)
- :mod:`.settings`: `sutra.verify`, the plan's targets and the load's size, for every verify
- :mod:`.limits`: the manifests' limits as container limits, what-ifs, clamping
- :mod:`.pull`, :mod:`.load`, :mod:`.sampler`: pulls over the registry API, a bounded load,
  memory and CPU from the containers' cgroups
- :mod:`.static`: what the manifests say about what only a cluster can show (both envs)
- :mod:`.pods`: readers of the Pods, autoscalers and `kubectl top` a cluster answers with
- :mod:`.local`: `inv verify --env local`; :mod:`.cluster`: a live cluster through kubectl
- :mod:`.report`: the self-contained HTML page with its charts
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import VerifyFailed
from ..core.stack import Stack
from ..tools.engine import Engine
from .model import VerifyReport
from .report import check_report_folder

__all__ = [
    "VerifyFailed",
    "VerifyReport",
    "check_report_folder",
    "publish",
    "refuse_local_flags",
    "verify_cluster_environment",
    "verify_local_stack",
]


def verify_local_stack(
    stack: Stack,
    engine: Engine,
    kubectl: Any,
    environment: Callable[[str], Any],
    *,
    compose_file: Path,
    settings: Mapping[str, Any],
    version: str,
    registry: str | None,
    requests: Any,
    concurrency: Any,
    memory: Sequence[str],
    cpu: Sequence[str],
    cost_settings: Mapping[str, Any] | None = None,
) -> VerifyReport:
    """`inv verify --env local`: every flag checked, then the measurements (see :mod:`.local`).
    ``cost_settings`` is `sutra.cost`: its pull rate is what the all-images estimate uses."""
    from ..core.references import validate_registry
    from ..images.cost import CostRates
    from ..k8s.capacity import capacity
    from ..k8s.manifests import render
    from .limits import parse_overrides
    from .local import LocalVerify, verify_local
    from .settings import VerifySettings

    names = stack.service_names
    memory_overrides = parse_overrides(memory, "memory", names)
    cpu_overrides = parse_overrides(cpu, "cpu", names)
    if registry is not None:
        validate_registry(registry)
    verify_settings = VerifySettings.from_settings(settings, requests=requests, concurrency=concurrency)
    rates = CostRates.from_settings(cost_settings or {})
    stray = sorted(set(verify_settings.memory_targets) - set(names))
    if stray:  # a typo, or the reference stack's names on a stack of another shape: said, not dropped
        import logging

        logging.getLogger("sutra").info(
            "[verify] sutra.verify.memory_targets names %s: no service of %s (%s); no target checked for it",
            ", ".join(stray),
            stack.path.name,
            ", ".join(names),
        )
    stack.check_version(version)
    objects = render(kubectl, environment(verify_settings.limits_from), stack)
    run = LocalVerify(
        stack,
        engine,
        compose_file,
        verify_settings,
        version,
        pull_megabytes_per_second=rates.pull_megabytes_per_second,
        registry=registry,
    )
    return verify_local(
        run, capacity(objects, order=names), objects, memory=memory_overrides, cpu=cpu_overrides
    )


def refuse_local_flags(env: str, flags: Mapping[str, Any]) -> None:
    """The flags that shape verify's own local project (its images, load and what-if limits)
    mean nothing for a cluster, which runs what it runs: given with one, a refusal, not silence."""
    from ..core.errors import SutraError

    given = [f"--{name}" for name, value in flags.items() if value not in (None, [], (), False)]
    if env != "local" and given:
        raise SutraError(
            f"{', '.join(given)}: only for `inv verify --env local` (verify reads the {env} cluster as it "
            "runs; change its manifests or load to change what it measures)"
        )


def verify_cluster_environment(
    kubectl: Any, environment: Any, stack: Stack, settings: Mapping[str, Any]
) -> VerifyReport:
    """`inv verify --env staging|production`: the live cluster, read through kubectl.

    ``settings`` are `sutra`: its `smoke_timeout`, and `verify` for the targets (the same the
    local verify and the deploy's last step read)."""
    from ..core.inputs import number
    from .cluster import verify_environment
    from .settings import VerifySettings

    timeout = number(settings["smoke_timeout"], "sutra.smoke_timeout")
    verify_settings = VerifySettings.from_settings(settings.get("verify"))
    return verify_environment(kubectl, environment, stack, smoke_timeout=timeout, settings=verify_settings)


def publish(report: VerifyReport, *, report_dir: Path | None) -> None:
    """After the edge has shown it: the page when asked, the CI summary when in CI; then the gate."""
    import os

    if report_dir is not None:
        from .report import write_report

        write_report(report, report_dir)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        from .report import append_step_summary

        append_step_summary(report)
    report.raise_if_failed()
