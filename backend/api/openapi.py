"""The OpenAPI schema documents every error a route can answer, in the one error shape.

What the generated schema itself shows is added to each operation: 422 where FastAPI says
there is input to validate, 400 and 413 where there is a body, 404 where the path names a
resource, and 503 everywhere (every route reads a store). From the access rules
(backend/api/access.py): no security on public routes, 401 on the others, and 403 naming the
role a route needs. What neither shows (409 conflicts, 429 lockout) routes declare with
`responses={status: {"description": ...}}`; any documented 4xx/5xx without a body of its own
gets the error shape.
"""

from typing import Any

from fastapi import FastAPI

from backend.api.access import PUBLIC, RULES, SIGNED_IN
from backend.api.errors import ErrorResponse

REF_PREFIX = "#/components/schemas/"
ERROR_REF = {"$ref": f"{REF_PREFIX}ErrorResponse"}

DESCRIPTIONS = {
    400: "The body could not be parsed at all (e.g. a broken multipart form)",
    401: "Missing, invalid or expired access token",
    404: "Not found",
    413: "Request body over the size limit",
    422: "Invalid input: `error.fields` lists each field error",
    503: "A backing service (database, Redis or broker) is unavailable",
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds until unlocked"}},
}
# FastAPI's own 422 body, replaced by the error shape everywhere.
FASTAPI_VALIDATION_MODELS = ("HTTPValidationError", "ValidationError")


def install(app: FastAPI) -> None:
    """Post-process the schema FastAPI generates, once, when it is first asked for."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(FastAPI.openapi(app))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template=REF_PREFIX + "{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorResponse"] = error_schema
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            _document_access(operation, RULES.get((method.upper(), path)))
            _document_operation(operation)
    for name in FASTAPI_VALIDATION_MODELS:
        components.pop(name, None)
    return schema


def _document_access(operation: dict[str, Any], rule: str | None) -> None:
    if rule is None:  # outside /api/v1: /health and /metrics say what they need themselves
        return
    if rule == PUBLIC:
        operation.pop("security", None)
        return
    if rule != SIGNED_IN:
        responses = operation.setdefault("responses", {})
        responses.setdefault("403", {"description": f"Needs the `{rule}` role or higher"})


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    statuses = {503}
    if "422" in responses:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.update({400, 413, 422})
    if operation.get("security"):
        statuses.add(401)
    if any(parameter["in"] == "path" for parameter in parameters):
        statuses.add(404)
    for code in statuses:
        responses.setdefault(str(code), {})
    for key, response in responses.items():
        if key.isdigit() and int(key) >= 400:
            _as_error(int(key), response)


def _as_error(status: int, response: dict[str, Any]) -> None:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref", "").removeprefix(REF_PREFIX) in FASTAPI_VALIDATION_MODELS:
        response.clear()  # FastAPI's own 422 body: not the shape the API answers with
        schema = {}
    response.setdefault("description", DESCRIPTIONS.get(status, "Error"))
    if not schema:  # declared with a description only: the error shape
        response["content"] = {"application/json": {"schema": ERROR_REF}}
    if status in HEADERS:
        response.setdefault("headers", HEADERS[status])
