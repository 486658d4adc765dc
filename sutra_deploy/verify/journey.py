"""The stack file's journey (:mod:`..core.journey`) over HTTP: learn a fact, find it again.

One home for the requests smoke, verify's load and its integrity checks send; each takes the
services' base URLs (local ports, or port-forwards) and an :class:`..tools.http.Http`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from ..core.errors import HttpError, JourneyMismatch
from ..core.journey import Journey, Request
from ..tools.http import Http

REQUEST_TIMEOUT = 3.0


@dataclass(frozen=True)
class Fact:
    """A fact the journey stored: its id (from learn's answer) and the marker it was made with."""

    id: str
    marker: str


class JourneyFailed(Exception):
    """A request of the journey failed or answered in another shape; the message says which."""


def new_marker() -> str:
    return uuid.uuid4().hex[:16]


def _send(
    http: Http, request: Request, urls: Mapping[str, str], values: Mapping[str, str], timeout
) -> object:
    method, path, body = request.render(values)
    url = urls[request.service].rstrip("/") + path
    try:
        return http.request(method, url, json_body=body, timeout=timeout).json()
    except HttpError as error:
        raise JourneyFailed(str(error)) from None
    except ValueError:  # an answer that is not JSON
        raise JourneyFailed(f"{method} {url} answered with no JSON") from None


def learn(
    http: Http, journey: Journey, urls: Mapping[str, str], marker: str, *, timeout=REQUEST_TIMEOUT
) -> Fact:
    answer = _send(http, journey.learn, urls, {"marker": marker}, timeout)
    try:
        return Fact(journey.learned_id(answer), marker)
    except JourneyMismatch as error:
        raise JourneyFailed(str(error)) from None


def find(
    http: Http, journey: Journey, urls: Mapping[str, str], fact: Fact, *, timeout=REQUEST_TIMEOUT
) -> bool:
    """Whether find's answer holds ``fact``; :class:`JourneyFailed` when it cannot tell."""
    values = {"marker": fact.marker, "id": fact.id}
    answer = _send(http, journey.find, urls, values, timeout)
    try:
        return journey.finds(answer, values)
    except JourneyMismatch as error:
        raise JourneyFailed(str(error)) from None


def walk(http: Http, journey: Journey, urls: Mapping[str, str]) -> str:
    """Learn a new fact and find it again; a short detail, or :class:`JourneyFailed`."""
    fact = learn(http, journey, urls, new_marker())
    if not find(http, journey, urls, fact):
        raise JourneyFailed(f"fact {fact.id} learned but not found by {journey.find.describe()}")
    return (
        f"learned {fact.id} ({journey.learn.describe()} on {journey.learn.service}) and found it "
        f"({journey.find.describe()} on {journey.find.service})"
    )
