"""Hostile input: oversized and streamed bodies, deep JSON, NUL bytes, SQL-looking and unicode
names. Each gets a clear 4xx in the error shape (never a 500) or round-trips unchanged."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from backend.schemas.common import MAX_JSON_DEPTH
from tests.support.configs import CONFIGS, field_locs, sleep_config, unique

MIB = 1024 * 1024
USERS = "/api/v1/users"
LOGIN = "/api/v1/auth/login"
JSON = {"content-type": "application/json"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status
    assert error["code"] == code
    return error


async def search_total(client: httpx.AsyncClient, headers: dict[str, str], text: str) -> int:
    listed = await client.get(CONFIGS, params={"search": text}, headers=headers)
    assert listed.status_code == 200, listed.text
    return listed.json()["total"]


def padded_config(size: int) -> tuple[str, bytes]:
    """A config body of exactly `size` bytes (its description pads it); returns its name."""
    name = unique("big")
    head = sleep_config(name=name, description="").copy()
    text = httpx.Request("POST", "/", json=head).content
    padding = size - len(text)
    assert padding > 0
    return name, text.replace(b'"description":""', b'"description":"' + b"x" * padding + b'"')[
        :size
    ]


# --- bodies over 1 MiB ---------------------------------------------------------------------


async def test_a_body_of_exactly_one_mebibyte_is_read(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    name, body = padded_config(MIB)
    assert len(body) == MIB
    response = await client.post(CONFIGS, content=body, headers=superuser_headers | JSON)
    # Read and validated: refused for the description's length, not for the body's size.
    assert ["body", "description"] in field_locs(response)
    assert await search_total(client, superuser_headers, name) == 0


@pytest.mark.parametrize(
    ("method", "url", "authenticated"),
    [
        ("POST", CONFIGS, True),
        ("POST", USERS, True),
        ("POST", "/api/v1/tasks/run", True),
        ("POST", LOGIN, False),
        ("POST", "/api/v1/auth/refresh", False),
    ],
)
async def test_a_body_one_byte_over_is_413(
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    method: str,
    url: str,
    authenticated: bool,
) -> None:
    name, body = padded_config(MIB + 1)
    headers = (superuser_headers if authenticated else {}) | JSON
    response = await client.request(method, url, content=body, headers=headers)
    assert_error(response, 413, "payload_too_large")
    assert response.request.headers["content-length"] == str(MIB + 1)
    assert await search_total(client, superuser_headers, name) == 0


async def test_a_chunked_body_without_content_length_is_counted(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    """Nothing declares the size: the limit counts the chunks as they arrive."""
    name, body = padded_config(2 * MIB)
    sent_chunks = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent_chunks
        for start in range(0, len(body), 64 * 1024):
            sent_chunks += 1
            yield body[start : start + 64 * 1024]

    response = await client.post(CONFIGS, content=chunks(), headers=superuser_headers | JSON)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "payload_too_large")
    assert await search_total(client, superuser_headers, name) == 0


async def test_a_patch_over_the_limit_changes_nothing(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    created = await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)
    url = f"{CONFIGS}/{created.json()['id']}"
    body = b'{"description": "' + b"x" * MIB + b'"}'
    response = await client.patch(url, content=body, headers=superuser_headers | JSON)
    assert_error(response, 413, "payload_too_large")
    assert (await client.get(url, headers=superuser_headers)).json() == created.json()


# --- deeply nested JSON ----------------------------------------------------------------------


def nested_text(depth: int) -> str:
    """`depth` levels of arrays as JSON text (built as text: json.dumps would recurse)."""
    return "[" * depth + "1" + "]" * depth


def http_config_text(body_depth: int) -> str:
    """An http.request config whose `parameters.body` nests `body_depth` arrays (its
    parameters are then body_depth + 1 levels deep)."""
    return (
        f'{{"name": "{unique("deep")}", "task_type": "http.request", "scheduler_type": "manual",'
        f' "parameters": {{"url": "http://127.0.0.1:9/", "body": {nested_text(body_depth)}}}}}'
    )


async def test_parameters_nested_to_the_limit_are_stored(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    content = http_config_text(MAX_JSON_DEPTH - 1)
    response = await client.post(CONFIGS, content=content, headers=superuser_headers | JSON)
    assert response.status_code == 201, response.text
    body = response.json()["parameters"]["body"]
    depth = 0
    while isinstance(body, list):
        (body,), depth = body, depth + 1
    assert depth == MAX_JSON_DEPTH - 1


@pytest.mark.parametrize("body_depth", [MAX_JSON_DEPTH, 900, 5_000, 200_000])
async def test_parameters_nested_deeper_are_422(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], body_depth: int
) -> None:
    """Past the cap, past the JSON encoder's recursion limit, and past the decoder's."""
    content = http_config_text(body_depth)
    assert len(content) < MIB
    response = await client.post(CONFIGS, content=content, headers=superuser_headers | JSON)
    error = assert_error(response, 422, "validation_error")
    assert error["fields"][0]["loc"][0] == "body"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
async def test_deep_json_elsewhere_is_422(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], depth: int
) -> None:
    created = await client.post(
        CONFIGS, json=sleep_config(scheduler_type="manual", schedule_config={}),
        headers=superuser_headers,
    )  # fmt: skip
    config_url = f"{CONFIGS}/{created.json()['id']}"
    for method, url, content in [
        ("POST", f"{config_url}/run", f'{{"parameters": {nested_text(depth)}}}'),
        ("PATCH", config_url, f'{{"schedule_config": {nested_text(depth)}}}'),
        ("POST", LOGIN, f'{{"username": "u", "password": {nested_text(depth)}}}'),
        ("POST", USERS, f'{{"email": {nested_text(depth)}}}'),
    ]:
        response = await client.request(
            method, url, content=content, headers=superuser_headers | JSON
        )
        assert_error(response, 422, "validation_error")


# --- NUL bytes -----------------------------------------------------------------------------


def new_user(**overrides: Any) -> dict[str, Any]:
    name = f"u{uuid.uuid4().hex[:10]}"
    return {"email": f"{name}@example.com", "username": name, "password": "pass-word-1"} | overrides


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"username": "nul\x00user"}, ["body", "username"]),
        ({"email": "nul\x00x@example.com"}, ["body", "email"]),
        ({"full_name": "Ada\x00Lovelace"}, ["body", "full_name"]),
    ],
)
async def test_nul_in_a_new_user_is_422(
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    overrides: dict[str, Any],
    loc: list[str],
) -> None:
    body = new_user(**overrides)
    response = await client.post(USERS, json=body, headers=superuser_headers)
    assert_error(response, 422, "validation_error")
    assert loc in field_locs(response)
    # Nothing stored: the same user without the NUL can still be created.
    clean = {key: value.replace("\x00", "") for key, value in body.items()}
    assert (await client.post(USERS, json=clean, headers=superuser_headers)).status_code == 201


async def test_nul_in_a_user_update_is_422(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    created = await client.post(USERS, json=new_user(), headers=superuser_headers)
    url = f"{USERS}/{created.json()['id']}"
    for changes in ({"full_name": "a\x00"}, {"username": "a\x00b"}):
        response = await client.patch(url, json=changes, headers=superuser_headers)
        assert_error(response, 422, "validation_error")
    me = await client.get(USERS, params={"limit": 100}, headers=superuser_headers)
    assert created.json() in me.json()["items"]


async def test_nul_in_a_login_username_is_422_not_a_database_error(
    client: httpx.AsyncClient,
) -> None:
    for body in (
        {"username": "admin\x00", "password": "whatever"},
        {"username": "admin@example.com\x00", "password": "whatever"},
    ):
        response = await client.post(LOGIN, json=body)
        assert_error(response, 422, "validation_error")
        assert ["body", "username"] in field_locs(response)
    form = await client.post(LOGIN, data={"username": "a\x00b", "password": "x"})
    assert_error(form, 422, "validation_error")


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/api/v1/tasks/executions/run%00id", {}),
        ("GET", CONFIGS, {"params": {"search": "\x00"}}),
        ("GET", CONFIGS, {"params": {"task_type": "demo.sleep\x00"}}),
    ],
)
async def test_nul_in_a_path_or_query_is_422(
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    response = await client.request(method, path, headers=superuser_headers, **kwargs)
    assert_error(response, 422, "validation_error")


async def test_nul_in_run_now_and_patch_is_422(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    created = await client.post(
        CONFIGS, json=sleep_config(scheduler_type="manual", schedule_config={}),
        headers=superuser_headers,
    )  # fmt: skip
    url = f"{CONFIGS}/{created.json()['id']}"
    for method, target, body in [
        ("POST", f"{url}/run", {"parameters": {"seconds": 0, "x\x00": 1}}),
        ("PATCH", url, {"name": "renamed\x00"}),
        ("PATCH", url, {"description": "\x00"}),
        ("PATCH", url, {"parameters": {"seconds": 0, "note": "\x00"}}),
    ]:
        response = await client.request(method, target, json=body, headers=superuser_headers)
        assert_error(response, 422, "validation_error")
    assert (await client.get(url, headers=superuser_headers)).json() == created.json()


# --- SQL-looking and unicode names ---------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "'; DROP TABLE task_configs; --",
        'Robert"); DELETE FROM users WHERE ("1"="1',
        "100% _done_ \\ like\\%",
        "\u23f0 nightly \U0001f680",  # emoji
        "\U0001f468\u200d\U0001f469\u200d\U0001f467 family",  # ZWJ sequence
        "\u05d2\u05d9\u05d1\u05d5\u05d9 \u05dc\u05d9\u05dc\u05d9",  # Hebrew, right to left
        "\u202eevil\u202c override",  # RTL override character
        "Cafe\u0301 Z\u0351\u0352a\u0353lgo\u0354",  # combining characters
        "\u591c\u9593\u30d0\u30c3\u30af\u30a2\u30c3\u30d7",  # CJK
    ],
)
async def test_names_round_trip_unchanged(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], name: str
) -> None:
    # Tests share one database: a suffix keeps the name unique without changing its nature.
    name = f"{name} {uuid.uuid4().hex[:8]}"
    created = await client.post(CONFIGS, json=sleep_config(name=name), headers=superuser_headers)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name
    fetched = await client.get(f"{CONFIGS}/{created.json()['id']}", headers=superuser_headers)
    assert fetched.json()["name"] == name
    listed = await client.get(CONFIGS, params={"search": name}, headers=superuser_headers)
    assert [item["name"] for item in listed.json()["items"]] == [name]
    # The database is still whole.
    assert (await client.get(CONFIGS, headers=superuser_headers)).json()["total"] >= 1


async def test_like_wildcards_in_a_search_match_literally(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    for text in ("%", "_", "\\"):
        listed = await client.get(CONFIGS, params={"search": text}, headers=superuser_headers)
        assert all(text in item["name"] or text in (item["description"] or "")
                   for item in listed.json()["items"])  # fmt: skip


# --- types and ranges as the schema states them -------------------------------------------

TOO_BIG = 2**31  # one past PostgreSQL's `integer`


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "loc"),
    [
        ("GET", f"{CONFIGS}/{TOO_BIG}", {}, ["path", "config_id"]),
        ("GET", f"{CONFIGS}/0", {}, ["path", "config_id"]),
        ("DELETE", f"{CONFIGS}/{10**30}", {}, ["path", "config_id"]),
        ("GET", f"{CONFIGS}/{TOO_BIG}/history", {}, ["path", "config_id"]),
        ("PATCH", f"{USERS}/{TOO_BIG}", {"json": {}}, ["path", "user_id"]),
        ("POST", "/api/v1/tasks/run", {"json": {"config_ids": [TOO_BIG]}}, None),
        ("GET", CONFIGS, {"params": {"offset": TOO_BIG}}, ["query", "offset"]),
        ("GET", USERS, {"params": {"offset": 10**20}}, ["query", "offset"]),
    ],
)
async def test_ids_and_offsets_past_int32_are_422_not_a_database_error(
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    loc: list[str] | None,
) -> None:
    response = await client.request(method, path, headers=superuser_headers, **kwargs)
    assert_error(response, 422, "validation_error")
    if loc is not None:
        assert loc in field_locs(response)


async def test_a_non_numeric_user_id_is_404(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    response = await client.patch(f"{USERS}/abc", json={}, headers=superuser_headers)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("url", "body", "loc"),
    [
        (CONFIGS, sleep_config(priority="5"), ["body", "priority"]),
        (CONFIGS, sleep_config(priority=True), ["body", "priority"]),
        (CONFIGS, sleep_config(max_retries=1.5), ["body", "max_retries"]),
        (USERS, new_user(is_superuser=0), ["body", "is_superuser"]),
        (USERS, new_user(is_active="true"), ["body", "is_active"]),
        ("/api/v1/tasks/run", {"config_ids": ["1"]}, ["body", "config_ids", 0]),
    ],
)
async def test_json_types_are_taken_as_the_schema_states(
    client: httpx.AsyncClient,
    superuser_headers: dict[str, str],
    url: str,
    body: dict[str, Any],
    loc: list[Any],
) -> None:
    response = await client.post(url, json=body, headers=superuser_headers)
    assert_error(response, 422, "validation_error")
    assert loc in field_locs(response)


async def test_a_whole_float_is_an_integer(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    """JSON Schema's `integer` includes 5.0, and so does the API."""
    response = await client.post(
        CONFIGS, json=sleep_config(priority=5.0, timeout_seconds=60.0), headers=superuser_headers
    )
    assert response.status_code == 201, response.text
    assert (response.json()["priority"], response.json()["timeout_seconds"]) == (5, 60)


@pytest.mark.parametrize("name", [" leading", "trailing ", "\tboth\n", "   ", "nbsp\u00a0"])
async def test_names_with_surrounding_whitespace_are_422(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], name: str
) -> None:
    response = await client.post(CONFIGS, json=sleep_config(name=name), headers=superuser_headers)
    assert_error(response, 422, "validation_error")
    assert ["body", "name"] in field_locs(response)
