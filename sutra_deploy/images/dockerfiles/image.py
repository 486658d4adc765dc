"""One service's v2 image, worked out from what the checkout says: :func:`plan_image` reads the
package (through fix-deps' readers), the pre-plan Dockerfile and stack.toml into the
:class:`ImageSpec` that :mod:`.render` writes as text. It does so part by part, each part
refusing what an optimized image must not carry and noting what it carried over, changed or
left out:

- :mod:`.dependencies`: fix-deps' findings, requirements, monorepo packages, constraints,
  build packages
- :mod:`.command`: what the runtime runs, and what it imports while it is built
- :mod:`.environment`: the pre-plan image's ENV and EXPOSE
- :mod:`.package_data`: the data files beside the code
- :mod:`.health`: the health check's timing
"""

from __future__ import annotations

from .command import check_server, runtime_command, smoke_imports
from .dependencies import (
    build_packages_for,
    check_findings,
    check_lock,
    declared_requirements,
    kept_constraints,
    local_packages,
    requirements_file,
)
from .environment import environment, note_ports
from .health import health_options
from .model import APP, LOCAL, ImagePlanning, ImageSpec, Inputs
from .package_data import package_data


def plan_image(inputs: Inputs) -> ImageSpec:
    """The image's parts worked out in turn; their notes are reported in the order they are added."""
    plan = ImagePlanning(inputs)
    check_findings(plan)
    note_ports(plan)
    requirements = declared_requirements(plan)
    local = local_packages(plan, requirements)
    local_keys = {pkg.key for pkg, _, _ in local}
    check_lock(plan, requirements, local_keys)
    constraints = kept_constraints(plan, requirements, local_keys)
    entrypoint, cmd, source = runtime_command(plan)
    check_server(plan, [*entrypoint, *cmd], requirements, local_keys)
    app_data, other_data = package_data(plan, {pkg.folder.resolve() for pkg, _, _ in local})
    lines = requirements_file(requirements, local)
    build_packages = build_packages_for(plan, lines)
    service, facts, stack = plan.service, plan.facts, inputs.stack
    build_base = stack.base_image(inputs.settings.build_base)
    runtime_base = stack.base_image(inputs.settings.runtime_base)
    return ImageSpec(
        service=service,
        version=stack.default_version,
        dockerfile=service.dockerfile(stack.default_version),
        context=service.context,
        declared_in=facts.declared_in,
        old=plan.preplan.path if plan.preplan else None,
        bases=(
            (build_base.build_arg, build_base.official),
            (runtime_base.build_arg, runtime_base.official),
        ),
        description=facts.description,
        build_packages=build_packages,
        requirements=tuple(lines),
        constraints=tuple(constraints),
        lock=inputs.lock if lines else None,
        local_copies=tuple(
            (plan.in_context(pkg.folder), f"{LOCAL}/{pkg.folder.name}") for pkg, _, _ in local
        ),
        code_copies=tuple((plan.in_context(c.source), f"{APP}/{c.source.name}") for c in facts.code),
        app_data=tuple(app_data),
        other_data=tuple(other_data),
        # These three run here, after the parts above, so their notes come last, in this order.
        env=tuple(environment(plan)),
        smoke=tuple(smoke_imports(plan, [*entrypoint, *cmd], local)),
        port=service.port.container,
        health=service.health,
        health_options=health_options(plan),
        entrypoint=tuple(entrypoint),
        cmd=tuple(cmd),
        entrypoint_source=source,
        notes=tuple(plan.notes),
    )
