"""Hold an answer to Zulip's API description and to what a real Zulip server answered.

The data is ``../shared/zulip-api/`` beside the project (its README says what is there):

- ``zulip.yaml``: Zulip's OpenAPI description at feature level 266, read once;
- ``recorded.json``: 22 exchanges with a real Zulip 9.0-dev server (status, headers that
  matter, the answer's shape key by key, and whole error bodies).

The API (kept stable: add, do not rename):

- :func:`validate` ``(method, path, status, body)``: the body must validate against the
  response schema that zulip.yaml gives for that endpoint and status (a path like
  ``messages/469/reactions``, with or without a leading ``/``, ``/api/v1/`` or ``/json/``).
  A status the endpoint does not list is looked up in zulip.yaml's ``/rest-error-handling``
  (the errors common to every endpoint: 400, 401, 429); a status found in neither is an
  error too: the fake must not answer what the spec does not allow.
- :func:`recorded` ``(name)``: a recorded exchange, by its exact name or a unique part of it.
- :func:`shape` ``(value)``: a value's shape in recorded.json's notation.
- :func:`assert_shape` ``(body, exchange, status=None)``: the body has the recorded shape
  (the same keys present and absent at each level, the same value types), the same status
  when ``status`` is given, and for a recorded error the same ``result`` and ``code``.
- :func:`assert_headers` ``(headers, exchange)``: the recorded headers are present, each with
  a value of the same form (an integer, or a fraction).
- :func:`spec`, :func:`exchanges`: the loaded data.

Validation uses ``openapi-schema-validator`` (OAS 3.0 ``nullable`` and the rest, on
``jsonschema``), with ``$ref`` resolved through ``referencing`` inside zulip.yaml. Two readings
of zulip.yaml and one addition are needed before a real server's answers validate; each is
applied in :func:`_load_spec` or :data:`EXTRA` and recorded in :data:`READINGS`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ROOT = Path(__file__).resolve().parents[1]
#: Where the data is: ``../shared/zulip-api`` from the project's root (CI has it there).
DATA = Path(os.environ.get("CAFEBOT_ZULIP_API_DIR", ROOT.parent / "shared" / "zulip-api"))
SPEC_URI = "urn:zulip-api:zulip.yaml"

#: How zulip.yaml is read, where reading it to the letter would refuse a real server's answer.
READINGS = (
    "oneOf is read as anyOf: zulip.yaml lists alternative error examples under oneOf that share "
    "one schema (CodedError: result, msg, code), so a real error body (recorded.json 'wrong api "
    "key', 'reaction twice') matches several alternatives and a strict oneOf refuses every one; "
    "event types and other alternatives are still told apart by their own keys",
    "RateLimitedError's retry-after is a number, not an integer: zulip.yaml's own example is "
    "28.706807374954224 and recorded.json 'rate limit hit at request 201' has 49.175384759902954",
    "GET /messages may answer 400 BAD_NARROW with a `desc` string beside result, msg and code: "
    "zulip.yaml lists no 400 for /messages, and the common errors of /rest-error-handling allow "
    "no `desc`, but a real server answers so (recorded.json 'unknown stream in narrow')",
)

#: Answers a real server gives that zulip.yaml does not describe: (method, path, status) ->
#: a schema also accepted (each one a line of READINGS, with its recording).
EXTRA: dict[tuple[str, str, int], dict[str, Any]] = {
    ("get", "/messages", 400): {
        "type": "object",
        "additionalProperties": False,
        "required": ["result", "msg", "code", "desc"],
        "properties": {
            "result": {"enum": ["error"]},
            "msg": {"type": "string"},
            "code": {"enum": ["BAD_NARROW"]},
            "desc": {"type": "string"},
        },
    },
}


class SpecMissing(AssertionError):
    """../shared/zulip-api is not there: the contract tests cannot run (and must not skip)."""


def _need(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        raise SpecMissing(
            f"{path} is missing: the Zulip contract tests read zulip.yaml and recorded.json from "
            f"../shared/zulip-api beside the project (CI has it; set CAFEBOT_ZULIP_API_DIR to "
            f"point elsewhere). They fail rather than skip without it."
        )
    return path


def _as_any_of(node: Any) -> Any:
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _as_any_of(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_as_any_of(v) for v in node]
    return node


@cache
def _load_spec() -> dict[str, Any]:
    with _need("zulip.yaml").open(encoding="utf-8") as f:
        loaded: dict[str, Any] = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    loaded = _as_any_of(loaded)
    rate = loaded["components"]["schemas"]["RateLimitedError"]["allOf"][1]["properties"]
    rate["retry-after"]["type"] = "number"
    return loaded


def spec() -> dict[str, Any]:
    """zulip.yaml, as read for validation (see :data:`READINGS`)."""
    return _load_spec()


@cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(spec(), default_specification=DRAFT4)
    return Registry().with_resource(SPEC_URI, resource)


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """zulip.yaml's paths as patterns, the most literal first (``users/me`` before ``{email}``)."""
    found = []
    for template in spec()["paths"]:
        pattern = re.escape(template.strip("/"))
        pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", pattern)
        found.append((re.compile(f"^{pattern}$"), template))
    found.sort(key=lambda item: (item[1].count("{"), item[1]))
    return found


def template(path: str) -> str:
    """The zulip.yaml path that an API path like ``messages/469`` is an instance of."""
    bare = path.split("?")[0].removeprefix("/").removeprefix("api/v1/").removeprefix("json/")
    bare = bare.strip("/")
    for pattern, name in _templates():
        if pattern.match(bare):
            return name
    raise AssertionError(f"zulip.yaml describes no endpoint {path!r}")


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _response_pointer(method: str, path: str, status: int) -> str:
    """A JSON pointer in zulip.yaml to the schema of this answer (AssertionError if none)."""
    paths = spec()["paths"]
    name = template(path)
    operation = paths[name].get(method.lower())
    if operation is None:
        raise AssertionError(f"zulip.yaml has no {method.upper()} {name}")
    for where, op in (
        (name, operation),
        ("/rest-error-handling", paths["/rest-error-handling"]["post"]),
    ):
        response = op["responses"].get(str(status))
        if response is None:
            continue
        verb = method.lower() if where == name else "post"
        if "$ref" in response:
            ref = response["$ref"].removeprefix("#/")
            return f"{ref}/content/application~1json/schema"
        return _pointer("paths", where, verb, "responses", str(status)) + (
            "/content/application~1json/schema"
        )
    listed = sorted(operation["responses"])
    raise AssertionError(
        f"zulip.yaml allows no {status} answer to {method.upper()} {name} (it lists {listed}, "
        f"and /rest-error-handling 400, 401, 429)"
    )


def validate(method: str, path: str, status: int, body: Any) -> None:
    """Raise AssertionError unless ``body`` is an answer zulip.yaml allows for this request."""
    extra = EXTRA.get((method.lower(), template(path), status))
    try:
        pointer = _response_pointer(method, path, status)
    except AssertionError:
        if extra is None:
            raise
        pointer = ""
    schema: dict[str, Any] = {"$ref": f"{SPEC_URI}#/{pointer}"} if pointer else extra or {}
    if pointer and extra is not None:
        schema = {"anyOf": [schema, extra]}
    validator = OAS30Validator(schema, registry=_registry())
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors[:10]:
            deepest = best_match(error.context) if error.context else error
            at = "/".join(map(str, deepest.absolute_path)) or "(top)"
            lines.append(f"- at {at}: {deepest.message[:300]}")
        raise AssertionError(
            f"{method.upper()} {path} {status}: the answer does not validate against "
            f"zulip.yaml ({template(path)}):\n" + "\n".join(lines)
        )


# ---------------------------------------------------------------- recorded.json


@cache
def _load_recorded() -> dict[str, Any]:
    with _need("recorded.json").open(encoding="utf-8") as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


def exchanges() -> list[dict[str, Any]]:
    """Every recorded exchange (each: name, request, status, headers, body_shape, body?)."""
    found: list[dict[str, Any]] = _load_recorded()["exchanges"]
    return found


def recorded_server() -> dict[str, Any]:
    """The recorded server's zulip_version and zulip_feature_level."""
    server: dict[str, Any] = _load_recorded()["server"]
    return server


def recorded(name: str) -> dict[str, Any]:
    """The exchange called ``name``, or the only one whose name contains it."""
    every = exchanges()
    exact = [e for e in every if e["name"] == name]
    if exact:
        return exact[0]
    partial = [e for e in every if name.lower() in e["name"].lower()]
    if len(partial) != 1:
        raise AssertionError(
            f"{len(partial)} recorded exchanges match {name!r}: "
            f"{[e['name'] for e in partial] or [e['name'] for e in every]}"
        )
    return partial[0]


def shape(value: Any) -> Any:
    """``value`` in recorded.json's notation: type names, dicts of keys, a list's first item."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def _compare(actual: Any, want: Any, where: str, problems: list[str]) -> None:
    here = where or "(top)"
    if isinstance(want, dict):
        if not isinstance(actual, dict):
            problems.append(f"{here}: recorded an object, got {type(actual).__name__}")
            return
        for key in sorted(want.keys() - actual.keys()):
            problems.append(f"{where}/{key}: recorded present, absent here")
        for key in sorted(actual.keys() - want.keys()):
            problems.append(f"{where}/{key}: recorded absent, present here")
        for key in sorted(want.keys() & actual.keys()):
            _compare(actual[key], want[key], f"{where}/{key}", problems)
    elif isinstance(want, list):
        if not isinstance(actual, list):
            problems.append(f"{here}: recorded a list, got {type(actual).__name__}")
            return
        if want:  # a recorded empty list says nothing of its items
            for i, item in enumerate(actual):
                _compare(item, want[0], f"{where}/{i}", problems)
    elif want == "object":  # the recording stopped descending here
        if not isinstance(actual, dict):
            problems.append(f"{here}: recorded an object, got {type(actual).__name__}")
    elif want == "list":
        if not isinstance(actual, list):
            problems.append(f"{here}: recorded a list, got {type(actual).__name__}")
    elif type(actual).__name__ != want:
        problems.append(f"{here}: recorded {want}, got {type(actual).__name__} ({actual!r:.60})")


def shape_problems(body: Any, exchange: Mapping[str, Any]) -> list[str]:
    """How ``body``'s shape differs from the exchange's (an empty list if it does not)."""
    want = exchange.get("body_shape")
    if want is None and "body" in exchange:
        want = shape(exchange["body"])
    problems: list[str] = []
    if want is not None:
        _compare(body, want, "", problems)
    error = exchange.get("body")
    if isinstance(error, dict) and isinstance(body, dict):
        for key in ("result", "code"):
            if key in error and body.get(key) != error[key]:
                problems.append(f"/{key}: recorded {error[key]!r}, got {body.get(key)!r}")
    return problems


def assert_shape(body: Any, exchange: Mapping[str, Any], status: int | None = None) -> None:
    """Raise AssertionError unless ``body`` (and ``status``) are as the exchange recorded."""
    problems = shape_problems(body, exchange)
    if status is not None and status != exchange["status"]:
        problems.insert(0, f"status: recorded {exchange['status']}, got {status}")
    if problems:
        raise AssertionError(
            f"differs from recorded.json {exchange['name']!r}:\n"
            + "\n".join(f"- {p}" for p in problems)
        )


_INTEGER = re.compile(r"^-?\d+$")
_FRACTION = re.compile(r"^-?\d+\.\d+$")


def _form(value: str) -> str:
    if _INTEGER.match(value):
        return "an integer"
    if _FRACTION.match(value):
        return "a fraction"
    return "text"


def assert_headers(headers: Mapping[str, str], exchange: Mapping[str, Any]) -> None:
    """Every header the exchange recorded is there (any case), with a value of the same form."""
    given = {k.lower(): v for k, v in headers.items()}
    problems = []
    for name, value in exchange.get("headers", {}).items():
        got = given.get(name.lower())
        if got is None:
            problems.append(f"{name}: recorded {value!r}, absent here")
        elif _form(got) != _form(value):
            problems.append(f"{name}: recorded {_form(value)} ({value}), got {got!r}")
    if problems:
        raise AssertionError(
            f"headers differ from recorded.json {exchange['name']!r}:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
