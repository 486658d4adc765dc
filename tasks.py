"""Sutra AI deployment tasks, one per phase of the deployment plan. See `inv --list`.

Each task checks its flags and turns them into one library call (deploy and rollback too:
ship/deploy.py and ship/rollback.py choose local or Kubernetes). Library modules are imported inside the
tasks: every `inv` invocation would otherwise pay for all of them (libcst, kubernetes-validate,
the docker SDK, sh, requests), whichever task it runs.
"""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, task

from sutra_deploy.core.inputs import split_names
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.deps.kinds import DEFAULT_FAIL_ON, FINDING_KINDS
from sutra_deploy.edge import guard_invoke_settings, hint_parse_errors, session, show, user_errors


@task(
    help={
        "only": "Make just this base image (a key under [base_images]); repeatable.",
        "force": "Remake even the images whose spec has not changed.",
        "json": "Print one JSON object on stdout instead of the table.",
    },
    iterable=["only"],
)
@user_errors
def base_images(c, only=None, force=False, json_=False):
    """Make the local base images from Debian's packages (no registry needed)."""
    from sutra_deploy.images.base_images import make_base_images

    s = session(c)
    only = split_names(only)
    made = make_base_images(
        s.stack,
        s.engine,
        only=only,
        force=force,
        ca_bundle=s.ca_bundle,
        runtime_ca_bundle=s.runtime_ca_bundle,
        jobs=s.jobs(),
    )
    show(made, as_json=json_)


def _build(
    c,
    service=None,
    version=None,
    no_cache=False,
    root=None,
    bases=None,
    jobs=None,
    tag=None,
    builder=None,
    json_=False,
    shown=True,
):
    from sutra_deploy.images import build as build_mod

    s = session(c)
    version = version or s.stack.default_version
    # git's release names a build of the default version: the same commit's v1 images must not
    # take the v2 images' release tag. `--tag` names a build of any version.
    release = s.release(tag, root, required=False) if tag or version == s.stack.default_version else None
    results = build_mod.build_images(
        s.stack,
        s.engine,
        names=split_names(service),
        version=version,
        root=s.source_root(root),
        bases=bases or s.settings["bases"],
        jobs=s.jobs(jobs),
        no_cache=no_cache,
        ca_bundle=s.ca_bundle,
        runtime_ca_bundle=s.runtime_ca_bundle,
        release=release.name if release else None,
        builder=builder or s.settings["builder"],
    )
    if shown and not s.dry:  # a dry run's stdout is the commands it would run
        show(build_mod.BuildReport.of(results, s.engine), as_json=json_)


@task(
    help={
        "service": "Build only this service (repeatable, or comma-separated).",
        "version": "v2 builds Dockerfile.optimized, v1 the pre-plan Dockerfiles (default v2).",
        "no-cache": "Build every step again instead of reusing cached layers.",
        "root": "Sutra source root (default: SUTRA_ROOT, else the reference implementation).",
        "bases": "Base images: auto (official if pullable, else local), local or official.",
        "jobs": "Images built at once: auto (every image under BuildKit, one per core under legacy) "
        "or a number (default from config sutra.jobs).",
        "tag": "Release name to tag the images with as well (default: the source root's git tag or "
        "commit, for the default version).",
        "builder": "auto (BuildKit when docker has buildx, else legacy), buildkit or legacy "
        "(default from config sutra.builder).",
        "json": "Print one JSON object on stdout instead of the table.",
    },
    iterable=["service"],
)
@user_errors
def build(
    c,
    service=None,
    version=None,
    no_cache=False,
    root=None,
    bases=None,
    jobs=None,
    tag=None,
    builder=None,
    json_=False,
):
    """Build the stack's images in the plan's order and print how long each took."""
    _build(c, service, version, no_cache, root, bases, jobs, tag, builder, json_)


@task(
    help={
        "service": "Measure only this service (repeatable, or comma-separated).",
        "version": "Image version to measure (default v2).",
        "json": "Print one JSON object on stdout instead of the table.",
        "baseline": "What 'Old' means: recorded (the plan's figures) or a version (v1: its images measured).",
        "explain": "Explain one service's image: bytes per layer and per Python package, and waste.",
        "cost": "Compare pull time and monthly costs before and after, from measured sizes.",
    },
    iterable=["service"],
)
@user_errors
def sizes(c, service=None, version=None, json_=False, baseline="recorded", explain=None, cost=False):
    """Print the plan's size table with measured sizes; fail if an image is over its limit."""
    from sutra_deploy.images.sizes import run_sizes

    s = session(c)
    output = run_sizes(
        s.stack,
        s.engine,
        names=split_names(service),
        version=version,
        baseline=baseline,
        explain=explain,
        cost=cost,
        cost_settings=s.settings.get("cost", {}),
    )
    show(output, as_json=json_)
    output.raise_if_over_limit()


@task(
    help={
        "version": "Image version to run, v2 (default) or v1: compose's SUTRA_TAG.",
        "build": "Build the images first.",
        "timeout": "Seconds to wait for every service to be healthy (default 120).",
        "json": "Print one JSON object on stdout instead of the table.",
    }
)
@user_errors
def local_up(c, version=None, build=False, timeout=None, json_=False):
    """Start the local stack and wait until every service is healthy."""
    from sutra_deploy.core.references import parse_tag
    from sutra_deploy.local.compose_stack import LocalStatus

    s = session(c)
    version = version or s.stack.default_version
    if version not in s.stack.versions:  # a release the images were also built as
        parse_tag(version, "--version")
    timeout = s.seconds(timeout, "local_timeout")
    if build:  # its table would break the one JSON object --json promises
        _build(c, version=version, shown=not json_)
    rows = s.local_stack.up(version, timeout=timeout)
    if rows:  # none under --dry
        show(LocalStatus(tuple(rows)), as_json=json_)


@task(help={"json": "Print one JSON object on stdout instead of the table."})
@user_errors
def cleanup(c, json_=False):
    """Remove what a killed run left (verify, a test run, a test cluster), owner gone."""
    from sutra_deploy.local.leftovers import find_leftovers, remove_leftovers

    s = session(c)
    s.engine.ensure_available()
    found = find_leftovers(s.engine)
    remove_leftovers(s.engine, found)
    show(found, as_json=json_)


@task(help={"volumes": "Also delete the storage data volume (kept by default)."})
@user_errors
def local_down(c, volumes=False):
    """Stop and remove the local stack's containers; the data volume stays."""
    s = session(c)
    s.local_stack.down(s.stack.default_version, volumes=volumes)


@task(help={"json": "Print one JSON object on stdout instead of the table."})
@user_errors
def local_status(c, json_=False):
    """Show each local service's state, health and host port."""
    from sutra_deploy.local.compose_stack import LocalStatus

    s = session(c)
    show(LocalStatus(tuple(s.local_stack.status(s.stack.default_version))), as_json=json_)


@task(
    help={"service": "Only this service's logs.", "follow": "Keep following.", "tail": "Last N lines."},
)
@user_errors
def logs(c, service=None, follow=False, tail=None):
    """Show the local stack's logs."""
    s = session(c)
    s.local_stack.logs(service, tail=tail, follow=follow, on_line=print)


@task(
    help={
        "json": "Print one JSON object on stdout instead of the table.",
        "base-url": "SERVICE=URL to probe instead of the local stack's port (repeatable).",
        "service": "Only check these services (repeatable, or comma-separated).",
        "timeout": "Seconds each check may retry (default 30).",
    },
    iterable=["base_url", "service"],
)
@user_errors
def smoke(c, json_=False, base_url=None, service=None, timeout=None):
    """Probe every service and check learn -> query end to end."""
    from sutra_deploy.verify.smoke import smoke_stack

    s = session(c)
    timeout = s.seconds(timeout, "smoke_timeout")
    report = smoke_stack(s.stack, names=split_names(service), base_urls=base_url or [], timeout=timeout)
    show(report, as_json=json_)
    report.raise_if_failed()


@task(
    help={
        "registry": "Registry and path to push to, e.g. localhost:5000/sutra-ai.",
        "version": "Image version to push (default v2).",
        "no-latest": "Do not also move :latest.",
        "service": "Only these services (repeatable, or comma-separated).",
        "tag": "Release to push (default: the source root's git tag or commit).",
        "force": "Overwrite a release tag the registry holds with another image.",
        "root": "Source root whose git commit names the release (default: SUTRA_ROOT, else the reference).",
        "json": "Print one JSON object on stdout instead of the table.",
    },
    iterable=["service"],
)
@user_errors
def push(
    c, registry, version=None, no_latest=False, service=None, tag=None, force=False, root=None, json_=False
):
    """Push the images as a release (R/<image>:<release>) and move :<version> and :latest to it."""
    from sutra_deploy.core.references import validate_registry
    from sutra_deploy.ship.push import PushReport, push_images

    s = session(c)
    services = s.stack.select(split_names(service))
    version = s.stack.check_version(version or s.stack.default_version)
    validate_registry(registry)
    release = s.release(tag, root, required=True)
    floating = s.floating_tags(version, latest=not no_latest)
    pushed = push_images(
        s.engine,
        services,
        registry=registry,
        version=version,
        release=release,
        floating=floating,
        force=force,
    )
    if not s.dry:  # a dry run's stdout is the commands it would run
        show(PushReport(release.name, tuple(pushed)), as_json=json_)


@task(
    help={
        "env": "local, or a Kubernetes environment (staging, production).",
        "service": "Only this service (repeatable; default: all): its container, or its deployment.",
        "to": "A release (see `inv releases`) or a version (v1, v2) to go to; default: "
        "local, the version before the one running; Kubernetes, undo the last rollout.",
        "timeout": "Seconds to wait: local, for health after the move (default sutra.local_timeout); "
        "Kubernetes, for each rollout (default the environment's rollout_timeout).",
        "yes": "Confirm a production rollback without asking.",
    },
    iterable=["service"],
)
@user_errors
def rollback(c, env, service=None, to=None, timeout=None, yes=False):
    """Roll back: the local stack to another version, or Kubernetes deployments."""
    from sutra_deploy.core.references import parse_tag
    from sutra_deploy.local.compose_stack import LocalStatus
    from sutra_deploy.ship.rollback import roll_back

    s = session(c)
    if to:
        parse_tag(to, "--to")
    wait = s.seconds(timeout, "local_timeout")  # checked first, whatever the environment
    rows = roll_back(
        s.stack,
        env,
        services=split_names(service),
        to=to,
        wait=wait,
        local=lambda: s.local_stack,
        kubectl=s.kubectl,
        environment=lambda: s.environment(env, rollout_timeout=wait if timeout else None),
        yes=yes,
    )
    if rows:  # the local stack after the move
        show(LocalStatus(tuple(rows)))


@task(
    help={
        "env": "Environment whose overlay to render (staging, production).",
        "registry": "Registry to point the images at (default: the environment's).",
        "tag": "Image tag (default: the overlay's).",
        "digests": "Pin each image to the digest the engine got when it was pushed.",
    }
)
@user_errors
def k8s_render(c, env, registry=None, tag=None, digests=False):
    """Print an environment's final manifests, images resolved."""
    from sutra_deploy.k8s import render_environment

    s = session(c)
    environment = s.environment(env, registry=registry, tag=tag)
    engine = s.engine if digests else None  # pins each image to the digest it was pushed with
    print(render_environment(s.kubectl, environment, s.stack, engine=engine), end="")


@task(
    help={
        "env": "Environment to apply (staging, production).",
        "registry": "Registry the images are pulled from (default: the environment's).",
        "tag": "Image tag (default: the overlay's).",
        "yes": "Confirm a production apply without asking.",
        "diff": "Show what would change (kubectl diff, a server-side dry run); apply nothing.",
    }
)
@user_errors
def k8s_apply(c, env, registry=None, tag=None, yes=False, diff=False):
    """Apply an environment in order, wait for every rollout, show pods and autoscalers."""
    from sutra_deploy.k8s import apply_environment, diff_environment

    s = session(c)
    environment = s.environment(env, registry=registry, tag=tag)
    if diff:
        print(diff_environment(s.kubectl, environment, s.stack), end="")
        return
    print(apply_environment(s.kubectl, environment, s.stack, yes=yes), end="")


@task(
    help={
        "env": "staging, production or local.",
        "version": "Image version to build and ship (default v2).",
        "yes": "Confirm a production deploy without asking.",
        "tag": "Release to ship (default: the source root's git tag or commit).",
    }
)
@user_errors
def deploy(c, env, version=None, yes=False, tag=None):
    """Build, gate on sizes, push, apply, wait, smoke; roll back on its own if any of it fails."""
    from sutra_deploy.k8s.environments import require_overlay
    from sutra_deploy.ship import deploy as deploy_mod

    s = session(c)
    # What a bad input would stop later is checked before the first build; the release last,
    # so that each bad setting is named for itself.
    version = s.stack.check_version(version or s.stack.default_version)
    s.jobs()
    s.source_root(None)
    environment = None if env == "local" else s.environment(env)
    if environment is not None:
        require_overlay(environment)
    smoke_timeout = s.seconds(None, "smoke_timeout")
    timeout = s.seconds(None, "local_timeout")
    floating = s.floating_tags(version)
    if environment is not None:
        deploy_mod.VerifySettings.from_settings(s.settings["verify"])
    release = s.release(tag, None, required=environment is not None)

    deploy_mod.deploy(
        s.stack,
        environment,
        engine=s.engine,
        kubectl=s.kubectl,
        local=lambda: s.local_stack,
        version=version,
        # The same release, by the same rule as `inv build`.
        build=lambda: _build(c, version=version, tag=tag),
        local_timeout=timeout,
        smoke_timeout=smoke_timeout,
        yes=yes,
        verify_settings=s.settings["verify"],  # the same `sutra.verify` as `inv verify`
        release=release,
        floating=floating,
    )


@task(
    help={
        "env": "local, or a Kubernetes environment (staging, production).",
        "registry": "Kubernetes: read this registry's tags (default: the environment's).",
        "json": "Print one JSON object on stdout instead of the tables.",
    }
)
@user_errors
def releases(c, env, registry=None, json_=False):
    """List releases: each service's revisions in a cluster, and the registry's (or local) tags."""
    from sutra_deploy.ship.history import list_releases

    s = session(c)
    if env == "local" and registry is not None:
        from sutra_deploy.core.errors import SutraError

        raise SutraError(
            "--registry: `releases --env local` lists the engine's own tags; "
            "a registry is read for a cluster's --env"
        )
    environment = None if env == "local" else s.environment(env, registry=registry)
    found = list_releases(s.kubectl, s.engine, environment, s.stack)
    show(found, as_json=json_)


@task(
    help={
        "env": "Environment whose manifests to measure (default production).",
        "json": "Print one JSON object on stdout instead of the table.",
    }
)
@user_errors
def capacity(c, env="production", json_=False):
    """Cluster capacity the manifests ask for: requests at minimum scale, limits at maximum."""
    from sutra_deploy.k8s import environment_capacity

    s = session(c)
    report = environment_capacity(s.kubectl, s.environment(env), s.stack)
    show(report, as_json=json_)


@task(
    help={
        "env": "local (default): this machine, under the plan's limits; or a Kubernetes environment.",
        "version": "local: the image version to verify (default v2).",
        "registry": "local: push and pull through this registry (default: a throwaway one, if installed).",
        "requests": "local: requests in the load (default sutra.verify.requests).",
        "concurrency": "local: requests at a time (default sutra.verify.concurrency).",
        "memory": "local what-if: SERVICE=QUANTITY memory limit instead of the manifest's (repeatable).",
        "cpu": "local what-if: SERVICE=QUANTITY CPU limit instead of the manifest's (repeatable).",
        "json": "Print one JSON object on stdout instead of the table.",
        "report": "Also write index.html (table and charts) and verify.json into this folder.",
    },
    iterable=["memory", "cpu"],
)
@user_errors
def verify(
    c,
    env="local",
    version=None,
    registry=None,
    requests=None,
    concurrency=None,
    memory=None,
    cpu=None,
    json_=False,
    report=None,
):
    """Measure the plan's success metrics: sizes, pulls, startup, load, memory, CPU, health."""
    from sutra_deploy import verify as verify_mod

    local_flags = {"version": version, "registry": registry, "requests": requests}
    local_flags.update({"concurrency": concurrency, "memory": memory, "cpu": cpu})
    verify_mod.refuse_local_flags(env, local_flags)
    report_folder = verify_mod.check_report_folder(report) if report is not None else None
    s = session(c)
    if env != "local":
        result = verify_mod.verify_cluster_environment(s.kubectl, s.environment(env), s.stack, s.settings)
    else:
        result = verify_mod.verify_local_stack(
            s.stack,
            s.engine,
            s.kubectl,
            s.environment,
            compose_file=s.compose_file,
            settings=s.settings["verify"],
            version=version or s.stack.default_version,
            registry=registry,
            requests=requests,
            concurrency=concurrency,
            memory=memory or [],
            cpu=cpu or [],
            cost_settings=s.settings["cost"],
        )
    show(result, as_json=json_)
    verify_mod.publish(result, report_dir=report_folder)


@task(
    help={
        "root": "Sutra source root (default: SUTRA_ROOT, else the reference implementation).",
        "service": "Check only this service's package (repeatable, or comma-separated).",
        "apply": "Rewrite setup.py and pyproject.toml, keeping their formatting and comments.",
        "json": "Print one JSON object on stdout instead of the table and diff.",
        "fail-on": "Finding kinds that fail the check, comma-separated, of "
        + ", ".join(FINDING_KINDS)
        + " (default: "
        + ", ".join(DEFAULT_FAIL_ON)
        + "); the others only warn.",
    },
    iterable=["service", "fail_on"],
)
@user_errors
def fix_deps(c, root=None, service=None, apply=False, json_=False, fail_on=None):
    """Find and fix service packages that declare another service or miss what they import."""
    from sutra_deploy.deps import fix_deps as audit_and_fix

    s = session(c)
    run = audit_and_fix(
        s.stack,
        s.source_root(root),
        names=split_names(service),
        settings=s.settings["deps"],
        fail_on=split_names(fail_on),
        apply=apply,
        dry=s.dry,
    )
    show(run, as_json=json_)  # before --apply changes anything
    run.finish()


@task(
    help={
        "root": "Sutra source root (default: SUTRA_ROOT, else the reference implementation).",
        "service": "Only this service (repeatable, or comma-separated).",
        "write": "Write the Dockerfiles (without it: print them, or a diff with --force).",
        "force": "Also regenerate v2 Dockerfiles that exist (shown as a diff; --write overwrites).",
        "json": "Print one JSON object on stdout instead of the files, diffs or table.",
        "extras": "Also install this optional extra of the package (repeatable, or comma-separated).",
        "lock": "A lock file (name==version lines) in the checkout: every install pins to it, and "
        "dependencies services share go into shared layers (setting sutra.dockerfiles.lock).",
    },
    iterable=["service", "extras"],
)
@user_errors
def dockerfiles(c, root=None, service=None, write=False, force=False, json_=False, extras=None, lock=None):
    """Write the v2 Dockerfiles a checkout lacks, from its packages and pre-plan Dockerfiles."""
    from sutra_deploy.images.dockerfiles import generate_dockerfiles

    s = session(c)
    report = generate_dockerfiles(
        s.stack,
        s.source_root(root),
        names=split_names(service),
        extras=split_names(extras),
        settings=s.settings.get("dockerfiles"),
        lock=lock,
        deps_settings=s.settings["deps"],
        write=write,
        force=force,
        dry=s.dry,
    )
    show(report, as_json=json_)


@task(
    help={
        "root": "The checkout to describe.",
        "write": "Write the stack file here (without it: print it).",
        "force": "Replace an existing --write file (the diff is shown).",
    }
)
@user_errors
def init(c, root, write=None, force=False):
    """Describe a checkout as a stack file: services, ports, health checks, environment, journey."""
    from sutra_deploy.core.source import resolve_source_root
    from sutra_deploy.init import init_stack

    s = session(c)
    target = Path(write).expanduser() if write else None
    result = init_stack(resolve_source_root(root), write=target, force=force, dry=s.dry)
    if result.diff:
        print(result.diff, end="")
    elif result.written is None:
        print(result.text, end="")


hint_parse_errors()
guard_invoke_settings()

ns = Collection(
    init,
    base_images,
    build,
    sizes,
    local_up,
    local_down,
    local_status,
    cleanup,
    logs,
    smoke,
    push,
    k8s_render,
    k8s_apply,
    rollback,
    releases,
    deploy,
    capacity,
    verify,
    fix_deps,
    dockerfiles,
)
ns.configure(DEFAULTS)
ns.configure({"tasks": {"auto_dash_names": True}})
