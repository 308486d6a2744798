"""The OpenAPI schema documents each error a route can answer, with the one error shape."""

from typing import Any

import pytest
from fastapi import FastAPI

from backend.main import create_app

ERROR_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    app: FastAPI = create_app()
    return app.openapi()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_error_response_has_the_error_shape(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) < 400 or path == "/health":
                continue
            body = response["content"]["application/json"]["schema"]
            assert body == {"$ref": ERROR_REF}, (method, path, status)
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_each_operation_documents_the_errors_it_can_answer(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        statuses = set(operation["responses"])
        assert "503" in statuses, (method, path)
        if operation.get("security"):
            assert "401" in statuses, (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= statuses, (method, path)
        if "{" in path:
            assert {"404", "422"} <= statuses, (method, path)


@pytest.mark.parametrize(
    ("method", "path", "declared"),
    [
        ("POST", "/api/v1/auth/login", {"401", "429"}),
        ("POST", "/api/v1/tasks/configs", {"403", "409"}),
        ("PATCH", "/api/v1/tasks/configs/{config_id}", {"403", "409"}),
        ("POST", "/api/v1/tasks/configs/{config_id}/actions/{action}", {"403", "409"}),
        ("POST", "/api/v1/users", {"403", "409"}),
        ("GET", "/api/v1/tasks/status", {"403"}),
    ],
)
def test_declared_errors_are_documented(
    schema: dict[str, Any], method: str, path: str, declared: set[str]
) -> None:
    responses = schema["paths"][path][method.lower()]["responses"]
    assert declared <= set(responses)


def test_me_is_open_to_every_user(schema: dict[str, Any]) -> None:
    assert "403" not in schema["paths"]["/api/v1/users/me"]["get"]["responses"]


def test_error_headers_are_documented(schema: dict[str, Any]) -> None:
    login = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "Retry-After" in login["429"]["headers"]
    me = schema["paths"]["/api/v1/users/me"]["get"]["responses"]
    assert "WWW-Authenticate" in me["401"]["headers"]
