"""Holding an answer to Zulip's own description of its API, and to a real server's answers.

Two data files in ``../shared/zulip-api/`` (from the project's root; see its README):
``zulip.yaml``, Zulip's OpenAPI description at feature level 266, and ``recorded.json``,
exchanges with a real Zulip 9.0-dev server. Nothing here is copied into the project.

The API (stable: add to it, don't rename):

- :func:`validate` ``(method, path, status, body)``: the answer is one the spec allows, for
  that endpoint and status (validated by openapi-core). A status the endpoint does not
  document is held to the spec's common errors (``/rest-error-handling``). Raises
  :class:`SpecMismatch` (an ``AssertionError``) naming what is wrong.
- :func:`recorded` ``(name_or_predicate)``: one recorded exchange, by a part of its name, its
  index, or a predicate on the exchange dict. :func:`exchanges` lists them all.
- :func:`shape` ``(value)``: a value's shape as ``recorded.json`` writes it (keys and type names).
- :func:`assert_shape` ``(body, exchange, status=None)``: the body has the recording's shape:
  the same keys present and absent at every level, the same value types; with ``status``,
  the same status; for a recorded error, the same ``code`` and the same keys.
- :func:`assert_headers` ``(headers, exchange)``: every header the recording kept is there,
  with a value of the same form (a whole number, or a fractional one).
- :func:`validate_answers` ``(fake.requests)``: :func:`validate` on every answer a
  ``FakeZulip`` gave; the ``fake`` fixture (tests/conftest.py) runs it after each test.

How the spec is read, and why (each is in :data:`READINGS`):

- Zulip lists error answers that differ only in their example under ``oneOf``; a body that
  matches one matches them all, which ``oneOf`` forbids. Zulip's own test suite skips its 4xx
  checks for this reason. Each alternative is exact (``additionalProperties: false``), so
  here ``oneOf`` is read as ``anyOf``: a body must match at least one alternative.
- Where the spec and the recorded server disagree, the server wins, and the place is patched
  in :data:`ERRATA` with the recording that shows it. Each erratum is tested to be needed
  (``tests/test_zulip_contract.py``).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.exceptions import ValidationError as OpenAPIValidationError

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "zulip-api"
HOST = "http://localhost:9991"  # one of the spec's servers ("Development server")

READINGS = (
    "oneOf is read as anyOf (alternatives that differ only in their example overlap)",
    "a status an endpoint does not document is held to /rest-error-handling",
)


class SpecMismatch(AssertionError):
    """An answer the spec does not allow, or that differs from the recording."""


@dataclass(frozen=True)
class Erratum:
    """A place where zulip.yaml says otherwise than the recorded server answers."""

    where: str  # a JSON pointer into zulip.yaml
    says: str
    server: str
    evidence: str  # the recording that shows it
    patch: Callable[[dict[str, Any]], None]


def _key(node: Any, part: str) -> Any:
    return int(part) if isinstance(node, list) else part.replace("~1", "/").replace("~0", "~")


def _set(pointer: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def patch(spec: dict[str, Any]) -> None:
        *parents, last = pointer.strip("/").split("/")
        node: Any = spec
        for part in parents:
            node = node[_key(node, part)]
        node[_key(node, last)] = value

    return patch


_BAD_NARROW = {
    "description": "A narrow the server cannot apply (BAD_NARROW).",
    "content": {
        "application/json": {
            "schema": {
                "allOf": [
                    {"$ref": "#/components/schemas/CodedErrorBase"},
                    {
                        "additionalProperties": False,
                        "required": ["desc"],
                        "properties": {
                            "result": {},
                            "msg": {},
                            "code": {"enum": ["BAD_NARROW"]},
                            "desc": {"type": "string"},
                        },
                    },
                ]
            }
        }
    },
}

ERRATA: tuple[Erratum, ...] = (
    Erratum(
        where="/components/schemas/RateLimitedError/allOf/1/properties/retry-after/type",
        says="integer",
        server="a fractional number of seconds (49.175384759902954)",
        evidence="rate limit hit at request 201",
        patch=_set(
            "/components/schemas/RateLimitedError/allOf/1/properties/retry-after/type", "number"
        ),
    ),
    Erratum(
        where="/paths/~1messages/get/responses/400",
        says="(no 400 documented; the common 400s allow only result, msg, code)",
        server="400 BAD_NARROW with a `desc` key, for an unknown channel in the narrow",
        evidence="unknown stream in narrow",
        patch=_set("/paths/~1messages/get/responses/400", _BAD_NARROW),
    ),
)


# ---------------------------------------------------------------- the files


def shared_dir() -> Path:
    """``../shared/zulip-api``, or a clear failure (never a skip: CI has it)."""
    if not (SHARED / "zulip.yaml").is_file() or not (SHARED / "recorded.json").is_file():
        pytest.fail(
            f"the contract tests need Zulip's API description and the recordings in {SHARED} "
            "(zulip.yaml and recorded.json); they are in shared/ beside the project's checkout",
            pytrace=False,
        )
    return SHARED


@functools.cache
def raw_spec() -> dict[str, Any]:
    """zulip.yaml as published (not patched)."""
    with (shared_dir() / "zulip.yaml").open("rb") as f:
        safe = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C one: 1 MB of YAML
        loaded: dict[str, Any] = yaml.load(f, Loader=safe)  # noqa: S506 - a safe loader
    return loaded


def _one_of_as_any_of(node: Any) -> Any:
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _one_of_as_any_of(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_one_of_as_any_of(v) for v in node]
    return node


@functools.cache
def spec() -> dict[str, Any]:
    """zulip.yaml as this module reads it: :data:`READINGS` and :data:`ERRATA` applied."""
    patched = copy.deepcopy(raw_spec())
    for erratum in ERRATA:
        erratum.patch(patched)
    read: dict[str, Any] = _one_of_as_any_of(patched)
    return read


@functools.cache
def openapi() -> OpenAPI:
    return OpenAPI.from_dict(spec())


@functools.cache
def _recordings() -> dict[str, Any]:
    with (shared_dir() / "recorded.json").open() as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


def server() -> dict[str, Any]:
    """The recorded server's version: ``zulip_version`` and ``zulip_feature_level``."""
    return dict(_recordings()["server"])


def exchanges() -> list[dict[str, Any]]:
    return list(_recordings()["exchanges"])


def recorded(which: str | int | Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The one exchange whose name contains ``which`` (or at that index, or matching it)."""
    found = exchanges()
    if isinstance(which, int):
        return found[which]
    if isinstance(which, str):
        matches = [e for e in found if which.lower() in e.get("name", "").lower()]
    else:
        matches = [e for e in found if which(e)]
    if len(matches) != 1:
        names = [e.get("name") for e in matches] or [e.get("name") for e in found]
        raise LookupError(f"{len(matches)} recorded exchanges match {which!r}: {names}")
    return matches[0]


# ---------------------------------------------------------------- the spec


def validate(method: str, path: str, status: int, body: Any) -> None:
    """``body`` (the parsed JSON answer) is one the spec allows for ``method path status``.

    ``path`` is the API path without ``/api/v1/``, like ``messages/12/reactions``.
    """
    validate_with(openapi(), method, path, status, body)


@functools.cache
def openapi_without_errata() -> OpenAPI:
    """The spec read as :func:`spec` reads it, but without :data:`ERRATA` (to show each is
    needed)."""
    unpatched: dict[str, Any] = _one_of_as_any_of(copy.deepcopy(raw_spec()))
    return OpenAPI.from_dict(unpatched)


def validate_with(api: OpenAPI, method: str, path: str, status: int, body: Any) -> None:
    """:func:`validate` against the spec ``api``."""
    payload = json.dumps(body).encode()
    request = MockRequest(HOST, method.lower(), "/api/v1/" + path.strip("/"))
    response = MockResponse(payload, status_code=status, content_type="application/json")
    where = f"{method.upper()} /{path.strip('/')} ({status})"
    try:
        try:
            api.validate_response(request, response)
        except ResponseNotFound:
            common = MockRequest(HOST, "post", "/api/v1/rest-error-handling")
            try:
                api.validate_response(common, response)
            except ResponseNotFound:
                raise SpecMismatch(
                    f"{where}: the spec documents no such status for this endpoint, "
                    "nor as a common error"
                ) from None
    except OpenAPIValidationError as exc:
        detail = "; ".join(str(e) for e in getattr(exc, "schema_errors", ()) or ()) or str(exc)
        cause = exc.__cause__
        if cause is not None:
            detail = "; ".join(
                str(getattr(e, "message", e)) for e in getattr(cause, "schema_errors", [cause])
            )
        raise SpecMismatch(f"{where}: not what zulip.yaml allows: {detail[:2000]}") from None


# ---------------------------------------------------------------- the recordings


def shape(value: Any) -> Any:
    """The shape of a JSON value as recorded.json writes it.

    A dict is a dict of the shapes of its values; a list is ``[shape of its items]`` (merged
    when the items are dicts), or ``[]``; anything else is its Python type's name.
    """
    if isinstance(value, Mapping):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        if not value:
            return []
        shapes = [shape(v) for v in value]
        if all(isinstance(s, dict) for s in shapes):
            merged: dict[str, Any] = {}
            for s in shapes:
                merged.update(s)
            return [merged]
        return [shapes[0]]
    return type(value).__name__


def _compare(got: Any, want: Any, where: str, problems: list[str]) -> None:
    if want == "object":  # recorded as opaque: any dict
        if not isinstance(got, Mapping):
            problems.append(f"{where}: {type(got).__name__}, recorded an object")
        return
    if isinstance(want, dict):
        if not isinstance(got, Mapping):
            problems.append(f"{where}: {type(got).__name__}, recorded an object")
            return
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        if missing:
            problems.append(f"{where}: missing {missing} (the server sends them)")
        if extra:
            problems.append(f"{where}: has {extra} (the server does not send them)")
        for key in sorted(set(want) & set(got)):
            _compare(got[key], want[key], f"{where}.{key}", problems)
        return
    if isinstance(want, list):
        if not isinstance(got, list):
            problems.append(f"{where}: {type(got).__name__}, recorded a list")
            return
        if want:  # [] was recorded empty: its items' shape is unknown
            for i, item in enumerate(got):
                _compare(item, want[0], f"{where}[{i}]", problems)
        return
    if type(got).__name__ != want:
        problems.append(f"{where}: {type(got).__name__} {got!r:.60}, recorded {want}")


def shape_problems(body: Any, exchange: Mapping[str, Any]) -> list[str]:
    """How ``body`` differs from the recorded answer's shape (empty: it does not)."""
    problems: list[str] = []
    want = exchange.get("body_shape")
    if want is None and "body" in exchange:
        want = shape(exchange["body"])
    if want is not None:
        _compare(body, want, "body", problems)
    if "body" in exchange and exchange["body"].get("result") == "error":
        code = body.get("code") if isinstance(body, Mapping) else None
        if code != exchange["body"].get("code"):
            problems.append(f"body.code: {code!r}, recorded {exchange['body'].get('code')!r}")
    return problems


def assert_shape(body: Any, exchange: Mapping[str, Any], status: int | None = None) -> None:
    """``body`` has the recorded answer's shape (and, given, the recorded ``status``)."""
    problems = shape_problems(body, exchange)
    if status is not None and status != exchange.get("status"):
        problems.insert(0, f"status {status}, recorded {exchange.get('status')}")
    if problems:
        raise SpecMismatch(
            f"differs from the recording {exchange.get('name', '')!r}:\n  " + "\n  ".join(problems)
        )


def _number_form(value: str) -> str:
    try:
        int(value)
    except ValueError:
        try:
            float(value)
        except ValueError:
            return "text"
        return "fractional"
    return "whole"


def assert_headers(headers: Mapping[str, str], exchange: Mapping[str, Any]) -> None:
    """Each header the recording kept is in ``headers`` (any case), in the same number form."""
    have = {k.lower(): v for k, v in headers.items()}
    problems = []
    for name, value in exchange.get("headers", {}).items():
        got = have.get(name.lower())
        if got is None:
            problems.append(f"missing header {name}")
        elif _number_form(got) != _number_form(value):
            problems.append(
                f"header {name}: {got!r} is {_number_form(got)}, "
                f"recorded {value!r} ({_number_form(value)})"
            )
    if problems:
        raise SpecMismatch(
            f"headers differ from the recording {exchange.get('name', '')!r}: "
            + "; ".join(problems)
        )


def validate_answers(requests: Iterable[Any]) -> int:
    """Validate every answer a :class:`tests.fakezulip.FakeZulip` gave (its ``requests``:
    ``method``, ``path``, ``status`` and ``answer``); returns how many were checked.

    Answers a fault injected in place of Zulip's (a cut connection, a proxy's 5xx) have no
    ``answer`` and are not Zulip's to check. All mismatches are reported together, once each.
    """
    checked, problems = 0, {}
    for request in list(requests):
        if request.answer is None or not isinstance(request.status, int):
            continue
        checked += 1
        try:
            validate(request.method, request.path, request.status, request.answer)
        except SpecMismatch as exc:
            problems.setdefault(str(exc)[:300], str(exc))
    if problems:
        raise SpecMismatch(
            f"{len(problems)} kind(s) of answer the spec does not allow:\n"
            + "\n".join(problems.values())
        )
    return checked
