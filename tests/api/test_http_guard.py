"""The SSRF guard of `http.request`: literal IPs refused with a 422 at create and at a run's
override, host names checked at run time (every address, redirects too, no second lookup).

The test session opens 127.0.0.0/8 (HTTP_TASK_ALLOWED_NETWORKS, tests/conftest.py); the
run-time tests below close it again where they need a refused loopback."""

import ipaddress
from collections.abc import AsyncIterator

import httpx
import pytest

from backend import ssrf
from backend.config import get_settings
from backend.services import delivery
from backend.tasks import http
from tests.support.configs import CONFIGS, field_locs, sleep_config
from tests.support.http_sink import HttpSink, http_sink

REFUSED_LITERALS = [
    "http://[::1]/",  # loopback (the session opens only 127.0.0.0/8)
    "http://169.254.169.254/latest/meta-data/",  # link-local: the cloud metadata service
    "http://10.0.0.5:5432/",  # private
    "http://192.168.0.1/",  # private
    "http://[fd12::1]/",  # unique-local
    "http://224.0.0.1/",  # multicast
    "http://0.0.0.0:6379/",  # unspecified
    "http://0xa9fea9fe/",  # 169.254.169.254 spelled in hex
]


def http_config(url: str) -> dict:
    return sleep_config(
        task_type="http.request",
        scheduler_type="manual",
        schedule_config={},
        parameters={"url": url},
    )


@pytest.mark.parametrize("url", REFUSED_LITERALS)
async def test_a_literal_internal_ip_is_refused_at_create(
    client: httpx.AsyncClient, superuser_headers: dict[str, str], url: str
) -> None:
    response = await client.post(CONFIGS, json=http_config(url), headers=superuser_headers)
    assert response.status_code == 422, response.text
    assert field_locs(response) == [["body", "parameters", "url"]]
    assert "HTTP_TASK_ALLOWED_NETWORKS" in response.json()["error"]["fields"][0]["msg"]


async def test_a_literal_internal_ip_is_refused_in_a_run_override(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    created = await client.post(
        CONFIGS, json=http_config("https://example.com/"), headers=superuser_headers
    )
    assert created.status_code == 201, created.text
    run = f"{CONFIGS}/{created.json()['id']}/run"
    body = {"parameters": {"url": "http://169.254.169.254/"}}
    response = await client.post(run, json=body, headers=superuser_headers)
    assert response.status_code == 422, response.text
    assert field_locs(response) == [["body", "parameters", "url"]]


async def test_an_allowed_network_is_accepted_and_called(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    async with http_sink() as sink:
        body = http_config(sink.url("/allowed"))
        created = await client.post(CONFIGS, json=body, headers=superuser_headers)
        assert created.status_code == 201, created.text
        result = await http.request(http.HttpRequestParameters(url=sink.url("/allowed")))
    assert result["status_code"] == 200
    assert sink.hits["/allowed"] == 1


# --- at run time: host names -----------------------------------------------------------


@pytest.fixture
async def sink() -> AsyncIterator[HttpSink]:
    async with http_sink() as server:
        yield server


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names the guard resolves to the addresses the test gives (a DNS the test controls);
    other names resolve for real. Each lookup is counted under `calls`."""
    names: dict[str, list[str]] = {"calls": []}
    real = ssrf._resolve

    async def resolve(host: str, port: int, timeout: float | None) -> list[str]:
        names["calls"].append(host)
        return names[host] if host in names else await real(host, port, timeout)

    monkeypatch.setattr(ssrf, "_resolve", resolve)
    return names


@pytest.fixture
def no_network_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = get_settings().model_copy(update={"http_task_allowed_networks": []})
    monkeypatch.setattr(http, "get_settings", lambda: closed)


def params(url: str, **extra: object) -> http.HttpRequestParameters:
    # Built without validation: a name is never refused by it, and the URLs below are names.
    return http.HttpRequestParameters.model_validate({"url": url, **extra})


async def test_a_name_resolving_to_a_private_address_fails_the_run(
    resolved: dict[str, list[str]], sink: HttpSink
) -> None:
    resolved["db.internal"] = ["10.0.0.7"]
    with pytest.raises(ssrf.DestinationRefused, match=r"db\.internal: destination 10\.0\.0\.7"):
        await http.request(params(f"http://db.internal:{sink.port}/x"))
    assert not sink.hits


async def test_every_resolved_address_is_checked(
    resolved: dict[str, list[str]], sink: HttpSink
) -> None:
    # The first address passes, the second is the metadata service: refused all the same.
    resolved["mixed.test"] = ["127.0.0.1", "169.254.169.254"]
    with pytest.raises(ssrf.DestinationRefused, match="link-local"):
        await http.request(params(f"http://mixed.test:{sink.port}/x"))
    assert not sink.hits


async def test_localhost_is_refused_unless_allowed(
    no_network_allowed: None, sink: HttpSink
) -> None:
    with pytest.raises(ssrf.DestinationRefused, match="loopback"):
        await http.request(params(f"http://localhost:{sink.port}/x"))
    assert not sink.hits


async def test_the_connection_goes_to_the_checked_address(
    resolved: dict[str, list[str]], sink: HttpSink
) -> None:
    """One lookup per connection, and the socket is opened to its answer: a name that
    resolves differently a moment later (DNS rebinding) cannot slip in a second address."""
    resolved["service.test"] = ["127.0.0.1"]
    result = await http.request(params(f"http://service.test:{sink.port}/ok"))
    assert result["status_code"] == 200
    assert resolved["calls"] == ["service.test"]
    assert sink.received[0].headers["host"] == f"service.test:{sink.port}"


async def test_a_redirect_to_a_private_address_is_refused(
    resolved: dict[str, list[str]], sink: HttpSink
) -> None:
    resolved["inside.test"] = ["192.168.10.10"]
    for path, target in {
        "/to-literal": "http://169.254.169.254/latest/meta-data/",
        "/to-name": f"http://inside.test:{sink.port}/secret",
    }.items():
        sink.redirects[path] = target
        with pytest.raises(ssrf.DestinationRefused):
            await http.request(params(sink.url(path), follow_redirects=True))
    assert set(sink.hits) == {"/to-literal", "/to-name"}  # the hops, never the targets


async def test_a_redirect_within_allowed_networks_is_followed(sink: HttpSink) -> None:
    sink.redirects["/hop"] = sink.url("/landed")
    result = await http.request(params(sink.url("/hop"), follow_redirects=True))
    assert result["status_code"] == 200
    assert sink.hits["/landed"] == 1


def test_the_allowed_networks_of_the_session() -> None:
    assert get_settings().http_task_allowed_networks == [ipaddress.ip_network("127.0.0.0/8")]


# --- alert webhooks: the same guard ----------------------------------------------------

CHANNELS = "/api/v1/notifications/channels"


async def test_an_alert_webhook_to_a_literal_internal_ip_is_refused(
    client: httpx.AsyncClient, superuser_headers: dict[str, str]
) -> None:
    for kind, config in {
        "webhook": {"url": "http://169.254.169.254/hook"},
        "slack": {"webhook_url": "http://10.1.1.1/services/x"},
    }.items():
        body = {"name": f"guarded-{kind}-{id(config)}", "kind": kind, "config": config}
        response = await client.post(CHANNELS, json=body, headers=superuser_headers)
        assert response.status_code == 422, response.text
        assert "HTTP_TASK_ALLOWED_NETWORKS" in response.text


async def test_an_alert_webhook_to_a_name_resolving_inside_fails_for_good(
    resolved: dict[str, list[str]], sink: HttpSink
) -> None:
    resolved["hooks.internal"] = ["10.9.9.9"]
    config = {"url": f"http://hooks.internal:{sink.port}/hook"}
    sent = await delivery.send("webhook", config, {"event": "failed"}, settings=get_settings())
    assert (sent.delivered, sent.final) == (False, True)
    assert "10.9.9.9" in (sent.error or "")
    assert not sink.hits
