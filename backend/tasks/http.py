"""`http.request`: one HTTP request; an unexpected status fails the run.

Behind the SSRF guard (backend/ssrf.py): a literal IP in a refused range fails validation
(422 at config create and at a run's override), a host name resolving to one fails the run.
"""

import time
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    JsonValue,
    field_validator,
)

from backend import ssrf
from backend.config import get_settings
from backend.tasks.registry import task_type

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
StatusCode = Annotated[int, Field(ge=100, le=599)]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, int) else value


class HttpRequestParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl  # http or https only
    method: Annotated[Method, BeforeValidator(_upper)] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: JsonValue = Field(
        default=None, description="A string is sent as is; an object or list as JSON."
    )
    expected_status: Annotated[list[StatusCode] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="Accepted status codes; by default any 2xx."
    )
    timeout_seconds: float = Field(default=30, gt=0, le=3600)
    follow_redirects: bool = False

    @field_validator("url")
    @classmethod
    def _refuse_internal_address(cls, url: HttpUrl) -> HttpUrl:
        refused = ssrf.literal_refusal(url.host, get_settings().http_task_allowed_networks)
        if refused:
            raise ValueError(refused)
        return url


class UnexpectedStatus(Exception):
    pass


def _is_expected(status: int, expected: list[int] | None) -> bool:
    return 200 <= status < 300 if expected is None else status in expected


@task_type(
    "http.request",
    description="Send one HTTP request; a status other than `expected_status` (default 2xx) "
    "fails the run. The result holds the status and the elapsed time, not the body.",
    parameters=HttpRequestParameters,
)
async def request(params: HttpRequestParameters) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if isinstance(params.body, str):
        body["content"] = params.body
    elif params.body is not None:
        body["json"] = params.body
    started = time.perf_counter()
    client = ssrf.client(
        get_settings().http_task_allowed_networks,
        timeout=params.timeout_seconds,
        follow_redirects=params.follow_redirects,
    )
    # Streamed and never read: only the status matters, so a huge body is not downloaded.
    request = client.stream(params.method, str(params.url), headers=params.headers, **body)
    async with client, request as response:
        status = response.status_code
    elapsed = round(time.perf_counter() - started, 6)
    if not _is_expected(status, params.expected_status):
        expected = params.expected_status or "2xx"
        raise UnexpectedStatus(
            f"{params.method} {params.url} answered {status}, expected {expected}"
        )
    return {"status_code": status, "elapsed_seconds": elapsed}
