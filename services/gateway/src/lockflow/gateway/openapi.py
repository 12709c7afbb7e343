"""The gateway's OpenAPI as published: FastAPI's, plus links between operations, and no `null` on the wire.

- Links (OpenAPI 3.1 `links`): which answer's value feeds which next call, e.g. `POST /runs` -> `GET
  /runs/{run_id}` with `$response.body#/id`. Clients and stateful testers (Schemathesis) follow them.
  One table here, next to nothing else, so the routes stay plain; `tests/api/test_gateway_openapi.py`
  checks that every link names an operation and a parameter that exist.
- A query, header or path parameter, or a multipart form field, cannot carry JSON `null`: leaving it
  out is how a client says "none". FastAPI documents `int | None = None` as `anyOf: [integer, null]`,
  which invites `Last-Event-ID: null` (then refused with 422); published without the `null` branch.
"""

from typing import Any

from fastapi import FastAPI

RUN_ID = {"run_id": "$response.body#/id"}
FIRST_RUN = {"run_id": "$response.body#/0/id"}
SOURCE_REF = {"ref": "$response.body#/id"}
FIRST_SOURCE = {"ref": "$response.body#/0/id"}
FIRST_REQUEST = {"request_id": "$response.body#/0/id"}
SAME_REQUEST = {"request_id": "$request.path.request_id"}
USERNAME = {"username": "$response.body#/username"}

RUN_READS = [
    ("GET", "/runs/{run_id}"),
    ("GET", "/runs/{run_id}/timeline"),
    ("GET", "/runs/{run_id}/events"),
    ("GET", "/runs/{run_id}/report"),
    ("GET", "/runs/{run_id}/plan"),
    ("POST", "/runs/{run_id}/retry"),
]
SOURCE_CALLS = [
    ("GET", "/sources/{ref}"),
    ("PATCH", "/sources/{ref}"),
    ("POST", "/sources/{ref}/test"),
    ("POST", "/sources/{ref}/runs"),
    ("DELETE", "/sources/{ref}"),
]
DECISION_CALLS = [
    ("GET", "/decisions/{request_id}"),
    ("POST", "/decisions/{request_id}/preview"),
    ("POST", "/decisions/{request_id}"),
]

# (method, path, status) of an answer -> the calls it feeds: (method, path, parameters, request body).
Link = tuple[str, str, dict[str, str], dict[str, Any] | None]
LINKS: dict[tuple[str, str, str], list[Link]] = {
    ("POST", "/runs", "201"): [(m, p, RUN_ID, None) for m, p in RUN_READS],
    ("POST", "/runs/upload", "201"): [(m, p, RUN_ID, None) for m, p in RUN_READS],
    ("POST", "/sources/{ref}/runs", "201"): [(m, p, RUN_ID, None) for m, p in RUN_READS],
    ("POST", "/runs/{run_id}/retry", "202"): [(m, p, RUN_ID, None) for m, p in RUN_READS],
    ("GET", "/runs", "200"): [(m, p, FIRST_RUN, None) for m, p in RUN_READS],
    ("POST", "/sources", "201"): [(m, p, SOURCE_REF, None) for m, p in SOURCE_CALLS],
    ("POST", "/sources/upload", "201"): [(m, p, SOURCE_REF, None) for m, p in SOURCE_CALLS],
    ("PATCH", "/sources/{ref}", "200"): [(m, p, SOURCE_REF, None) for m, p in SOURCE_CALLS],
    ("GET", "/sources", "200"): [(m, p, FIRST_SOURCE, None) for m, p in SOURCE_CALLS],
    ("GET", "/decisions", "200"): [(m, p, FIRST_REQUEST, None) for m, p in DECISION_CALLS],
    ("GET", "/decisions/{request_id}", "200"): [
        *[(m, p, SAME_REQUEST, None) for m, p in DECISION_CALLS if m == "POST"],
        ("GET", "/runs/{run_id}", {"run_id": "$response.body#/run_id"}, None),
    ],
    ("POST", "/auth/users", "201"): [
        ("PUT", "/auth/users/{username}/roles", USERNAME, None),
        ("POST", "/auth/users/{username}/disable", USERNAME, None),
    ],
    ("POST", "/auth/login", "200"): [
        ("POST", "/auth/refresh", {}, {"refresh_token": "$response.body#/refresh_token"}),
    ],
    ("POST", "/auth/refresh", "200"): [
        ("POST", "/auth/refresh", {}, {"refresh_token": "$response.body#/refresh_token"}),
    ],
}
FORM_MEDIA = ("multipart/form-data", "application/x-www-form-urlencoded")


def install_openapi(app: FastAPI) -> None:
    """Publish the app's OpenAPI with the links and without `null` where the wire has none."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with the links added and `null` taken out of parameters and form fields (in place)."""
    add_links(schema)
    for operations in schema["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = without_null(parameter.get("schema", {}))
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                if media in FORM_MEDIA:
                    _form_without_null(schema, content.get("schema", {}))
    return schema


def add_links(schema: dict[str, Any]) -> None:
    """Declare each answer's links; a link to an undocumented operation is a programming error, except
    one that involves the auth service's routes on a gateway serving alone (they are not mounted)."""
    paths = schema["paths"]
    for (method, path, status), links in LINKS.items():
        if _auth_route(path) and path not in paths:
            continue
        response = paths[path][method.lower()]["responses"][status]
        declared = response.setdefault("links", {})
        for target_method, target_path, parameters, body in links:
            if _auth_route(target_path) and target_path not in paths:
                continue
            target = paths[target_path][target_method.lower()]
            link: dict[str, Any] = {"operationId": target["operationId"]}
            if parameters:
                link["parameters"] = parameters
            if body is not None:
                link["requestBody"] = body
            declared[f"{target_method} {target_path}"] = link


def _auth_route(path: str) -> bool:
    """The auth service's own routes, mounted on the gateway's app only in embedded mode."""
    return path.startswith(("/auth", "/shares", "/audit", "/.well-known"))


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, {type: null}]` as X (keeping title, description and default); other schemas unchanged."""
    choices = schema.get("anyOf")
    if not choices or {"type": "null"} not in choices:
        return schema
    rest = [choice for choice in choices if choice != {"type": "null"}]
    outer = {key: value for key, value in schema.items() if key != "anyOf"}
    if outer.get("default", 0) is None:
        del outer["default"]
    return {**outer, **rest[0]} if len(rest) == 1 else {**outer, "anyOf": rest}


def _form_without_null(schema: dict[str, Any], body: dict[str, Any]) -> None:
    ref = body.get("$ref", "")
    target = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else body
    properties = target.get("properties", {})
    for name, field in properties.items():
        properties[name] = without_null(field)
