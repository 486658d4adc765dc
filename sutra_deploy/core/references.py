"""Image references, parsed once: the registry a task pushes to, a tag, a digest, a whole
``[registry/]name[:tag][@digest]``, and the repository names the stack file gives its images.

The grammar is the distribution reference grammar (github.com/distribution/reference,
``regexp.go``), which the Docker engine and every registry apply::

    reference := name [":" tag] ["@" digest]
    name      := [domain "/"] path-component ["/" path-component]*
    domain    := domain-component ["." domain-component]* [":" port]  |  "[" IPv6 "]" [":" port]

Which first component is a domain is Docker's rule (``normalize.go``): one with a ``.`` or a
``:``, ``localhost``, or one with upper-case letters; ``sutra-ai/sutra-api`` is a Docker Hub
repository, ``localhost:5000/sutra-api`` one on a local registry. A value that does not parse is
one :class:`BadReference` naming the flag or setting it came from, before anything is built,
pushed or applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import BadReference

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
DOMAIN = re.compile(rf"(?P<host>{_HOST})(?::(?P<port>[0-9]+))?")
PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"{PATH_COMPONENT}(?:/{PATH_COMPONENT})*")
# Go's \w is ASCII only; Python's is not, hence the explicit class.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(
    r"(?P<algorithm>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):(?P<hex>[0-9a-fA-F]{32,})"
)
# What the engine and registries compute (go-digest's registered algorithms): lower-case hex.
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
REPOSITORY_MAX = 255  # characters in the path (distribution's RepositoryNameTotalLengthMax)
TAG_RULE = "letters, digits, '_', '.' and '-', not starting with '.' or '-', at most 128 of them"
_PLACEHOLDER = "image"  # a registry is checked as the name `registry/image` it starts


@dataclass(frozen=True)
class Registry:
    """Where images are pushed: ``domain[/path]`` (``localhost:5000``, ``r.io/sutra-ai``), or
    a Docker Hub namespace (``sutraai``: no domain)."""

    domain: str | None
    path: str | None

    def __str__(self) -> str:
        return "/".join(part for part in (self.domain, self.path) if part)


@dataclass(frozen=True)
class ImageReference:
    domain: str | None  # None: Docker Hub
    path: str  # the repository within the registry: "sutra-ai/sutra-api"
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Everything before the tag: what kustomize's `images[].name` matches."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"


@dataclass(frozen=True)
class ImageParts:
    """An image as an engine or a cluster reports it, split but not judged."""

    name: str  # everything before the tag and the digest: what kustomize's images[].name matches
    tag: str | None
    digest: str | None  # only a well-formed one


def _split(text: str) -> tuple[str, str | None, str, bool]:
    """(name, tag or None, digest text, whether there was an '@'): the one place an image
    reference is taken apart. A ':' after the last '/' starts the tag; before it, a port."""
    rest, at, digest = text.partition("@")
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        return rest[:colon], rest[colon + 1 :], digest, bool(at)
    return rest, None, digest, bool(at)


def image_parts(text: str) -> ImageParts:
    """An image the engine, a manifest or a cluster names (`r.io/x/sutra-api:v2@sha256:…`),
    split as :func:`parse_reference` splits it, without refusing anything: for what this tool
    reads back. What a user gives goes through :func:`parse_reference`."""
    name, tag, digest, at = _split(text or "")
    return ImageParts(name, tag or None, digest if at and _digest_problem(digest) is None else None)


def parse_reference(text: object, what: str = "image reference") -> ImageReference:
    """``[domain/]path[:tag][@digest]``; ``what`` names the flag or setting in the error."""
    value = _text(text, what, "image reference")
    name, tag, digest, at = _split(value)
    domain, path = _split_name(name, value, what, "image reference")
    if tag is not None and not TAG.fullmatch(tag):
        raise BadReference(what, value, "image reference", _tag_problem(tag))
    if at and (problem := _digest_problem(digest)):
        raise BadReference(what, value, "image reference", problem)
    return ImageReference(domain, path, tag, digest if at else None)


def parse_registry(text: object, what: str = "--registry") -> Registry:
    """``domain[:port][/path]`` or a Docker Hub namespace: what goes before ``/image``; no
    scheme, tag or digest."""
    value = _text(text, what, "registry")
    if "://" in value:
        raise BadReference(what, value, "registry", "it has a scheme")
    # Parsed as the name it starts (``R/image``): so a ':' is a port, never a tag, and the
    # same rule as Docker's says whether the first part is a host.
    domain, path = _split_name(f"{value}/{_PLACEHOLDER}", value, what, "registry", check_path=False)
    if not REPOSITORY.fullmatch(path) or len(path) > REPOSITORY_MAX:
        given = path.removesuffix(f"/{_PLACEHOLDER}")
        raise BadReference(what, value, "registry", _path_problem(given) or "an empty part in its path")
    return Registry(domain, path.rpartition("/")[0] or None)


def validate_registry(registry: str, what: str = "--registry") -> str:
    """HOST[:PORT][/PATH] as the reference grammar allows it: "localhost:5000",
    "registry.example.io/sutra-ai"; no scheme, no tag (the grammar above)."""
    parse_registry(registry, what)
    return registry


def parse_tag(text: object, what: str = "--tag") -> str:
    value = _text(text, what, "tag")
    if not TAG.fullmatch(value):
        raise BadReference(what, value, "tag", TAG_RULE)
    return value


def parse_digest(text: object, what: str = "digest") -> str:
    value = _text(text, what, "digest")
    problem = _digest_problem(value)
    if problem:
        raise BadReference(what, value, "digest", problem)
    return value


def parse_repository(text: object, what: str) -> str:
    """A repository name without registry, tag or digest (the stack's image names)."""
    value = _text(text, what, "repository name")
    problem = _path_problem(value)
    if problem:
        raise BadReference(what, value, "repository name", problem)
    return value


def _split_name(
    name: str, whole: str, what: str, kind: str, *, check_path: bool = True
) -> tuple[str | None, str]:
    first, slash, rest = name.partition("/")
    if slash and _names_a_registry(first):
        match = DOMAIN.fullmatch(first)
        if not match:
            raise BadReference(what, whole, kind, f"{first!r} is not a registry HOST[:PORT]")
        if match["port"] is not None and not 0 < int(match["port"]) < 65536:
            raise BadReference(what, whole, kind, f"port {match['port']} is not from 1 to 65535")
        domain, path = first, rest
    else:
        domain, path = None, name
    problem = _path_problem(path) if check_path else None
    if problem:
        raise BadReference(what, whole, kind, problem)
    return domain, path


def _names_a_registry(first: str) -> bool:
    """Whether a name's first component is a registry host (distribution's rule), not a path."""
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


def domain_and_path(name: str) -> tuple[str | None, str]:
    """A name (no tag, no digest) as (registry host, or None for Docker Hub; repository path),
    by the same rule :func:`parse_reference` applies, without judging either part."""
    first, slash, rest = name.partition("/")
    return (first, rest) if slash and _names_a_registry(first) else (None, name)


def _path_problem(path: str) -> str | None:
    if REPOSITORY.fullmatch(path):
        return None if len(path) <= REPOSITORY_MAX else f"a repository is at most {REPOSITORY_MAX} characters"
    if not path:
        return "the repository name is empty"
    if REPOSITORY.fullmatch(path.lower()):
        return "a repository name must be lower-case"
    return (
        f"{path!r} is not a repository: lower-case letters and digits in '/'-separated parts, "
        "joined inside a part by '.', '_', '__' or '-'"
    )


def _tag_problem(tag: str) -> str:
    return f"the tag {tag!r} is not {TAG_RULE}"


def _digest_problem(digest: str) -> str | None:
    match = DIGEST.fullmatch(digest)
    if not match:
        return f"the digest {digest!r} is not ALGORITHM:HEX (sha256:<64 hex digits>)"
    algorithm, hex_digits = match["algorithm"], match["hex"]
    length = DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        return f"the digest algorithm {algorithm!r} is not one of {', '.join(DIGEST_HEX_LENGTHS)}"
    if len(hex_digits) != length or hex_digits != hex_digits.lower():
        return f"a {algorithm} digest is {length} lower-case hex digits"
    return None


def _text(value: object, what: str, kind: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadReference(what, value, kind, "expected a non-empty string")
    return value
