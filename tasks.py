"""Sutra AI deployment tasks, one per phase of the deployment plan. See `inv --list`."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, task

from sutra_deploy import base_images as bases_mod
from sutra_deploy import build as build_mod
from sutra_deploy import sizes as sizes_mod
from sutra_deploy.edge import DEFAULTS, session, split_names, user_errors
from sutra_deploy.source import resolve_source_root


@task(
    help={
        "only": "Make just this base image (a key under [base_images]); repeatable.",
        "force": "Remake even the images whose spec has not changed.",
    },
    iterable=["only"],
)
@user_errors
def base_images(c, only=None, force=False):
    """Make the local base images from Debian's packages (no registry needed)."""
    s = session(c)
    s.docker.ensure_available()
    ca = s.settings.get("ca_bundle")
    maker = bases_mod.BaseImageMaker(
        s.stack, s.docker, ca_bundle=Path(ca) if ca else None, jobs=int(s.settings["jobs"])
    )
    results = maker.ensure(split_names(only) or None, force=force)
    print(bases_mod.results_table(results))


@task(
    help={
        "service": "Build only this service (repeatable, or comma-separated).",
        "version": "v2 builds Dockerfile.optimized, v1 the pre-plan Dockerfiles (default v2).",
        "no-cache": "Build every step again instead of reusing cached layers.",
        "root": "Sutra source root (default: SUTRA_ROOT, else the reference implementation).",
        "bases": "Base images: auto (official if pullable, else local), local or official.",
        "jobs": "Images built at once (default from config sutra.jobs).",
    },
    iterable=["service"],
)
@user_errors
def build(c, service=None, version=None, no_cache=False, root=None, bases=None, jobs=None):
    """Build the stack's images in the plan's order and print how long each took."""
    s = session(c)
    ca = s.settings.get("ca_bundle")
    results = build_mod.build_images(
        s.stack,
        s.docker,
        names=split_names(service),
        version=version or s.stack.default_version,
        root=resolve_source_root(root or s.settings.get("root")),
        bases=bases or s.settings["bases"],
        jobs=int(jobs or s.settings["jobs"]),
        no_cache=no_cache,
        ca_bundle=Path(ca) if ca else None,
    )
    if not s.dry:
        print(build_mod.summary_table(results, s.docker))


@task(
    help={
        "service": "Measure only this service (repeatable, or comma-separated).",
        "version": "Image version to measure (default v2).",
        "json": "Print one JSON object on stdout instead of the table.",
        "baseline": "What 'Old' means: recorded (the plan's figures) or v1 (measured v1 images).",
    },
    iterable=["service"],
)
@user_errors
def sizes(c, service=None, version=None, json_=False, baseline="recorded"):
    """Print the plan's size table with measured sizes; fail if an image is over its limit."""
    s = session(c)
    services = s.stack.select(split_names(service))
    s.docker.ensure_available()
    report = sizes_mod.measure(
        s.stack,
        s.docker,
        services,
        version=version or s.stack.default_version,
        baseline=baseline,
    )
    print(report.to_json() if json_ else report.table())
    sizes_mod.gate(report)


ns = Collection(base_images, build, sizes)
ns.configure(DEFAULTS)
ns.configure({"tasks": {"auto_dash_names": True}})
