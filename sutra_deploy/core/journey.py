"""The end-to-end journey as data: store a fact through one request, find it again through
another. `inv smoke`, verify's load and integrity checks and deploy's smoke all take it from the
stack file's ``[journey]`` (schema in the README, "The stack file"), so a checkout whose API
answers with other fields or at other paths is described, not patched.

A journey has two requests. ``learn`` stores a fact; ``id`` is a JSON Pointer (RFC 6901) into
its answer giving the stored fact's id. ``find`` asks for it; ``found`` says where the answer's
list of results is (``list``), what to look at in each (``match``), and what it must be
(``equals``) or hold (``contains``). Strings in paths and bodies may name ``{marker}`` (unique per
fact) and, in ``find``, ``{id}`` (the learned id).

This module is pure: requests are rendered and answers judged here; the HTTP is the caller's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import JourneyMismatch

METHODS = ("GET", "POST", "PUT", "PATCH")
PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")
LEARN_VALUES = ("marker",)
FIND_VALUES = ("marker", "id")


class PointerMissing(LookupError):
    pass


def resolve(document: Any, pointer: str) -> Any:
    """The value ``pointer`` (RFC 6901: "" is the whole document, "/a/0/b" walks in) names."""
    if pointer == "":
        return document
    value = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            raise PointerMissing(pointer)
    return value


def placeholders(value: Any) -> set[str]:
    """Every ``{name}`` in the strings of a JSON value."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set()


def fill(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with each ``{name}`` in its strings replaced (keys are left as they are)."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


@dataclass(frozen=True)
class Request:
    service: str
    method: str
    path: str  # may hold placeholders
    body: Any = None  # a JSON value (strings may hold placeholders); None: no body

    def render(self, values: Mapping[str, str]) -> tuple[str, str, Any]:
        """(method, path, body) with the placeholders filled."""
        return self.method, fill(self.path, values), fill(self.body, values)

    def describe(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Found:
    list: str  # JSON Pointer to the array of results
    match: str = ""  # JSON Pointer inside each result
    equals: str | None = None  # a template the matched value must equal
    contains: str | None = None  # a template the matched value must contain


@dataclass(frozen=True)
class Journey:
    learn: Request
    id: str  # JSON Pointer into learn's answer
    find: Request
    found: Found

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.learn.service, self.find.service)))

    def learned_id(self, answer: Any) -> str:
        """The stored fact's id from learn's answer; :class:`JourneyMismatch` without one."""
        try:
            value = resolve(answer, self.id)
        except PointerMissing:
            raise JourneyMismatch(
                f"{self.learn.describe()} gave no id at {self.id!r}: {_short(answer)}"
            ) from None
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise JourneyMismatch(f"{self.learn.describe()} gave no usable id at {self.id!r}: {value!r}")
        return str(value)

    def results(self, answer: Any) -> list:
        try:
            listed = resolve(answer, self.found.list)
        except PointerMissing:
            listed = None
        if not isinstance(listed, list):
            raise JourneyMismatch(
                f"{self.find.describe()} answered without a list at {self.found.list!r}: {_short(answer)}"
            )
        return listed

    def finds(self, answer: Any, values: Mapping[str, str]) -> bool:
        """Whether find's answer holds the fact (``values``: its marker and id)."""
        wanted = fill(self.found.equals if self.found.equals is not None else self.found.contains, values)
        for item in self.results(answer):
            try:
                value = resolve(item, self.found.match)
            except PointerMissing:
                continue
            if self.found.equals is not None and _text(value) == wanted:
                return True
            if self.found.contains is not None and wanted in _text(value):
                return True
        return False


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _short(answer: Any) -> str:
    return f"{answer!r:.200}"


# --- the stack file's [journey] ------------------------------------------------------------


class JourneyParser:
    """``[journey]`` from a stack file's raw TOML, checked, through the stack file's reader
    (:mod:`.stack`: its ``table`` checks keys, its ``fail`` makes the error naming the key)."""

    def __init__(self, reader: Any, services: tuple[str, ...]) -> None:
        self.fail = reader.fail
        self.keys = reader.table
        self.services = services

    def journey(self, raw: Any) -> Journey:
        if not isinstance(raw, dict):
            raise self.fail("journey", "expected a table with [journey.learn] and [journey.find]")
        self.keys(raw, "journey", {"learn", "find"}, set())
        learn_raw, find_raw = raw["learn"], raw["find"]
        self.keys(learn_raw, "journey.learn", {"service", "method", "path", "id"}, {"body"})
        self.keys(find_raw, "journey.find", {"service", "method", "path", "found"}, {"body"})
        learn = self.request(learn_raw, "journey.learn", LEARN_VALUES)
        find = self.request(find_raw, "journey.find", FIND_VALUES)
        found_raw = find_raw["found"]
        self.keys(found_raw, "journey.find.found", {"list"}, {"match", "equals", "contains"})
        if ("equals" in found_raw) == ("contains" in found_raw):
            raise self.fail("journey.find.found", "expected one of equals or contains")
        test = "equals" if "equals" in found_raw else "contains"
        template = self.text(found_raw[test], f"journey.find.found.{test}", FIND_VALUES)
        return Journey(
            learn=learn,
            id=self.pointer(learn_raw["id"], "journey.learn.id"),
            find=find,
            found=Found(
                list=self.pointer(found_raw["list"], "journey.find.found.list"),
                match=self.pointer(found_raw.get("match", ""), "journey.find.found.match"),
                **{test: template},
            ),
        )

    def request(self, raw: dict, where: str, allowed: tuple[str, ...]) -> Request:
        service = raw["service"]
        if service not in self.services:
            raise self.fail(f"{where}.service", f"no service {service!r}; known: {', '.join(self.services)}")
        method = raw["method"]
        if method not in METHODS:
            raise self.fail(f"{where}.method", f"expected one of {', '.join(METHODS)}, got {method!r}")
        path = self.text(raw["path"], f"{where}.path", allowed)
        if not path.startswith("/") or any(c in path for c in " \t\r\n#"):
            raise self.fail(f"{where}.path", f"expected a URL path starting with '/', got {path!r}")
        body = raw.get("body")
        if body is not None:
            self.check_placeholders(body, f"{where}.body", allowed)
            if method == "GET":
                raise self.fail(f"{where}.body", "a GET sends no body")
        return Request(service, method, path, body)

    def text(self, raw: Any, where: str, allowed: tuple[str, ...]) -> str:
        if not isinstance(raw, str) or not raw:
            raise self.fail(where, f"expected a non-empty string, got {raw!r}")
        self.check_placeholders(raw, where, allowed)
        return raw

    def check_placeholders(self, value: Any, where: str, allowed: tuple[str, ...]) -> None:
        unknown = sorted(placeholders(value) - set(allowed))
        if unknown:
            names = ", ".join("{" + a + "}" for a in allowed)
            raise self.fail(where, f"unknown placeholder {{{unknown[0]}}} (here: {names})")

    def pointer(self, raw: Any, where: str) -> str:
        if not isinstance(raw, str) or (raw and not raw.startswith("/")):
            raise self.fail(where, f"expected a JSON Pointer ('' or starting with '/'), got {raw!r}")
        return raw
