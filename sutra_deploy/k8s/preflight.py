"""Before anything is applied: does this cluster serve everything the manifests use?

Asked of the cluster itself, never of its version number: its discovery (is `autoscaling/v2`
served, and `HorizontalPodAutoscaler` in it?) and its OpenAPI schema (`/openapi/v2`), which
names every field each served kind has. A field the cluster's schema lacks would be refused by
kubectl's validation, or dropped by the server, only once the apply reached that object, with
the objects before it already changed; found here, nothing is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import ClusterLacks

MANIFESTS_NEED = "Kubernetes 1.30 or later (k8s/README.md)"
SHOWN = 4  # gaps named in the one line; the rest are counted


@dataclass(frozen=True)
class Gap:
    obj: str  # `Deployment/sutra-api`
    field: str  # `spec.template.spec.containers[0].lifecycle.preStop.sleep`, or "" for the kind
    lacks: str  # what the cluster lacks, in its own schema's words

    def __str__(self) -> str:
        return f"{self.obj} {self.field} ({self.lacks})" if self.field else f"{self.obj} ({self.lacks})"


def served_kinds(discovery: Mapping[str, Mapping[str, Any] | None]) -> dict[str, set[str]]:
    """apiVersion -> the kinds it serves, from each group version's discovery document (None
    when the cluster answered that it does not serve that version)."""
    return {
        api_version: {r["kind"] for r in (document or {}).get("resources", []) if "/" not in r["name"]}
        for api_version, document in discovery.items()
        if document is not None
    }


def gaps(objects: Sequence[Mapping[str, Any]], served: Mapping[str, set[str]], openapi: Mapping) -> list[Gap]:
    """Every version, kind or field in ``objects`` that the cluster does not have."""
    definitions = openapi.get("definitions") or {}
    by_kind = _definitions_by_kind(definitions)
    found: list[Gap] = []
    for obj in objects:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        name = f"{kind}/{(obj.get('metadata') or {}).get('name', '?')}"
        if api_version not in served:
            found.append(Gap(name, "", f"the cluster does not serve {api_version}"))
            continue
        if kind not in served[api_version]:
            found.append(Gap(name, "", f"{api_version} has no kind {kind} in this cluster"))
            continue
        definition = by_kind.get((api_version, kind))
        if definition is None:  # served, but not described: nothing to check fields against
            continue
        reference = {"$ref": f"#/definitions/{definition}"}
        found += [Gap(name, path, lacks) for path, lacks in _unknown_fields(obj, reference, definitions, "")]
    return found


def check(objects: Sequence[Mapping[str, Any]], served: Mapping[str, set[str]], openapi: Mapping) -> None:
    """One line naming what the cluster lacks, each lack once with the first object that
    needs it and how many more do; exit 2 (ClusterLacks)."""
    found = gaps(objects, served, openapi)
    if not found:
        return
    by_lack: dict[str, list[Gap]] = {}
    for gap in found:
        by_lack.setdefault(gap.lacks, []).append(gap)
    parts = []
    for lacks, members in by_lack.items():
        first = members[0]
        where = f"{first.obj} at {first.field}" if first.field else first.obj
        more = f", and {len(members) - 1} more" if len(members) > 1 else ""
        parts.append(f"{lacks} ({where}{more})")
    shown = "; ".join(parts[:SHOWN]) + (f"; and {len(parts) - SHOWN} more" if len(parts) > SHOWN else "")
    raise ClusterLacks(
        f"the cluster lacks what the manifests use: {shown}. They need {MANIFESTS_NEED}; nothing was applied"
    )


def _definitions_by_kind(definitions: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """(apiVersion, kind) -> the name of the definition that describes it."""
    out: dict[tuple[str, str], str] = {}
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind") or ():
            group, version = gvk.get("group", ""), gvk.get("version", "")
            out[(f"{group}/{version}" if group else version, gvk.get("kind", ""))] = name
    return out


def _unknown_fields(
    value: Any, schema: Mapping, definitions: Mapping, path: str
) -> Iterator[tuple[str, str]]:
    type_name, schema = _resolved(schema, definitions)
    if isinstance(value, Mapping):
        properties = schema.get("properties")
        if properties is None:
            extra = schema.get("additionalProperties")
            if isinstance(extra, Mapping):
                for key, item in value.items():
                    yield from _unknown_fields(item, extra, definitions, f"{path}.{key}".lstrip("."))
            return  # a free-form object (labels, annotations) or an opaque type
        for key, item in value.items():
            field_path = f"{path}.{key}".lstrip(".")
            if key not in properties:
                yield field_path, f"{type_name} has no field {key}"
            else:
                yield from _unknown_fields(item, properties[key], definitions, field_path)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                yield from _unknown_fields(item, items, definitions, f"{path}[{index}]")


def _resolved(schema: Mapping, definitions: Mapping) -> tuple[str, Mapping]:
    """The schema a `$ref` names, and that name (the cluster's own type name)."""
    name = "the object"
    for _ in range(50):  # a reference to a reference ..., never a loop forever
        if "$ref" not in schema:
            break
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        schema = definitions.get(name, {})
    return name, schema
