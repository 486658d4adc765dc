"""Layers of dependencies that several services' images share, so that a node pulls them once
and a registry stores them once.

An image's layer is shared with another's only when both are the same bytes on the same
parent layers. So a shared layer is made by a stage written the same way, byte for byte, in
every Dockerfile that uses it (same base, same requirements, same lock): the build cache makes
it once, and each runtime copies it first, straight onto the runtime base. Shared layers need a
lock (:mod:`.lock`): with every version pinned, what a shared stage installs is what each
service's own resolution would have installed.

Which layers: each requirement is grouped by the set of services that declare it; a group of
two or more services becomes a layer, larger groups first, as long as the groups stay nested
or apart (an image's layers are a chain: api's layers can be those it shares with everyone,
then those it shares with hybrid, but not also a separate chain with control). A layer installs
its requirements on top of the layers below it and keeps only what those lack; each service's
own stage then installs everything it declares and drops what its shared layers already hold
(by distribution and version, from each ``*.dist-info``)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .model import LOCAL, ImageSpec, SharedLayer


def share_layers(specs: Sequence[ImageSpec]) -> list[ImageSpec]:
    """The specs, each given the shared layers it takes part in (none without a lock, or
    when no dependency is declared by two services)."""
    eligible = [s for s in specs if _eligible(s) and _same_build(s, specs)]
    if len(eligible) < 2:
        return list(specs)
    declared = {s.service.name: _index_requirements(s) for s in eligible}
    by_signature: dict[frozenset[str], list[str]] = {}
    for name in sorted({n for reqs in declared.values() for n in reqs}):
        holders = frozenset(s for s, reqs in declared.items() if name in reqs)
        line = _shared_line(name, [declared[s][name] for s in sorted(holders)])
        if len(holders) >= 2 and line is not None:
            by_signature.setdefault(holders, []).append(line)
    accepted: list[frozenset[str]] = []
    for signature in sorted(by_signature, key=lambda s: (-len(s), -len(by_signature[s]), sorted(s))):
        if all(signature <= a or signature >= a or not (signature & a) for a in accepted):
            accepted.append(signature)
    constraints = eligible[0].lock.constraints if eligible[0].lock else ()
    layers: dict[frozenset[str], SharedLayer] = {}
    for signature in accepted:  # supersets come first, so parents are made before children
        parents = tuple(layers[a] for a in accepted if a > signature)
        requirements = tuple(by_signature[signature])
        digest = hashlib.sha256(
            "\n".join([*requirements, "--", *constraints, "--", *(p.key for p in parents)]).encode()
        ).hexdigest()[:12]
        layers[signature] = SharedLayer(digest, requirements, tuple(sorted(signature)), parents, constraints)
    out = []
    for spec in specs:
        chain = tuple(layers[a] for a in accepted if spec.service.name in a)
        out.append(dataclasses.replace(spec, shared=chain) if chain else spec)
    return out


def _eligible(spec: ImageSpec) -> bool:
    # Build packages change what pip can install; a spec without a lock has no pinned versions.
    return spec.lock is not None and not spec.build_packages and bool(spec.requirements)


def _same_build(spec: ImageSpec, specs: Sequence[ImageSpec]) -> bool:
    """Shares only with images built on the same bases from the same lock."""
    first = next(s for s in specs if _eligible(s))
    return spec.bases == first.bases and spec.lock == first.lock


def _index_requirements(spec: ImageSpec) -> dict[str, Requirement]:
    found = {}
    for line in spec.requirements:
        if line.startswith(LOCAL):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        found[canonicalize_name(requirement.name)] = requirement
    return found


def _shared_line(name: str, requirements: list[Requirement]) -> str | None:
    """What a shared layer installs for a requirement several services declare: the name (the
    lock pins the version), the extras every one of them asks for; None when their markers
    differ."""
    markers = {str(r.marker) if r.marker else "" for r in requirements}
    if len(markers) > 1:
        return None
    extras = set.intersection(*(set(r.extras) for r in requirements))
    line = name + (f"[{','.join(sorted(extras))}]" if extras else "")
    marker = markers.pop()
    return line + (f"; {marker}" if marker else "")
