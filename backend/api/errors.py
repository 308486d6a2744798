"""The handlers that map every error to the one JSON shape, and that shape's models.

Shape: {"error": {"status": 404, "code": "not_found", "message": "...", "fields": [...],
"request_id": "..."}}; `fields` lists the field errors of a 422 and is empty otherwise.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request, routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.errors import UNAVAILABLE_ERRORS, InvalidInput, TaskhubError, unavailable
from backend.log import request_id_var

logger = logging.getLogger(__name__)


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: `body`, `query` or `path`, then the field")
    msg: str
    type: str


class ErrorDetail(BaseModel):
    status: int
    code: str = Field(description="Stable machine-readable name, e.g. `not_found`")
    message: str
    fields: list[FieldError] = Field(description="The field errors of a 422; empty otherwise")
    request_id: str


class ErrorResponse(BaseModel):
    """The one error shape, as documented in the OpenAPI schema."""

    error: ErrorDetail


def error_body(
    status: int, code: str, message: str, fields: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "status": status,
            "code": code,
            "message": message,
            "fields": fields or [],
            "request_id": request_id_var.get(),
        }
    }


def located_fields(exc: TaskhubError) -> list[dict[str, Any]]:
    """A service's field errors are relative to its input, which the API took from the body."""
    if not isinstance(exc, InvalidInput) or exc.source != "input":
        return exc.fields
    return [{**field, "loc": ["body", *field["loc"]]} for field in exc.fields]


def error_response(exc: TaskhubError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.status, exc.code, exc.message, located_fields(exc)),
        status_code=exc.status,
        headers=exc.headers,
    )


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def _taskhub_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TaskhubError)
    if exc.status >= 500:
        logger.error("request failed: %s", exc)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    undecodable = _undecodable_json(exc)
    if undecodable:
        field = {"loc": ["body"], "msg": undecodable, "type": "json_invalid"}
        return JSONResponse(
            error_body(422, InvalidInput.code, "Request validation failed", [field]),
            status_code=422,
        )
    code = HTTP_CODES.get(exc.status_code, "error")
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return JSONResponse(
        error_body(exc.status_code, code, str(exc.detail)),
        status_code=exc.status_code,
        headers=headers,
    )


def _undecodable_json(exc: StarletteHTTPException) -> str | None:
    """FastAPI answers 400 when decoding a JSON body raises anything but a JSONDecodeError;
    such a body is malformed JSON all the same, which the API answers with 422."""
    if exc.status_code != 400:
        return None
    if isinstance(exc.__cause__, RecursionError):
        return "JSON nested too deeply to decode"
    if isinstance(exc.__cause__, UnicodeDecodeError):
        return "Body is not valid UTF-8"
    return None


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path; Starlette names only the first route's.
    A path that spells a route without parameters (`/tasks/configs/apply`) is that route's
    alone, not also one of `/tasks/configs/{config_id}`."""
    methods: set[str] = set()
    for route in routing.iter_route_contexts(request.app.routes):
        path_regex, route_methods = getattr(route, "path_regex", None), route.methods
        if path_regex is not None and route_methods and path_regex.match(request.url.path):
            methods |= route_methods
    return ", ".join(sorted(_literal_route_methods(request) or methods))


def _jsonable_field_error(error: Any) -> dict[str, Any]:
    return {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}


def _literal_route_methods(request: Request) -> set[str]:
    """The methods of the routes whose template has no parameter and matches the path."""
    methods: set[str] = set()
    for route in routing.iter_route_contexts(request.app.routes):
        path_regex, route_methods = getattr(route, "path_regex", None), route.methods
        literal = route.path_format is not None and "{" not in route.path_format
        if (
            literal
            and path_regex is not None
            and route_methods
            and path_regex.match(request.url.path)
        ):
            methods |= route_methods
    return methods


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # `PATCH /tasks/configs/apply` matched `PATCH /tasks/configs/{config_id}` and failed on
    # the id; but the path names the apply route, which does not take PATCH: a 405.
    literal = _literal_route_methods(request)
    if literal and request.method not in literal:
        return JSONResponse(
            error_body(405, HTTP_CODES[405], "Method Not Allowed"),
            status_code=405,
            headers={"Allow": ", ".join(sorted(literal))},
        )
    fields = [_jsonable_field_error(e) for e in exc.errors()]
    return JSONResponse(
        error_body(422, InvalidInput.code, "Request validation failed", fields), status_code=422
    )


async def _store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    logger.error("backing service unavailable: %s: %s", type(exc).__name__, exc)
    return error_response(unavailable(exc))


def install(app: FastAPI) -> None:
    app.add_exception_handler(TaskhubError, _taskhub_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for exc_type in UNAVAILABLE_ERRORS:
        app.add_exception_handler(exc_type, _store_unavailable)
