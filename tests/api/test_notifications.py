"""Notification channels: kinds, write-only secrets, the test send, and bad input."""

import hashlib
import hmac
import json

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.auth import bearer_for, create_user, unique_username
from tests.support.configs import sleep_config
from tests.support.http_sink import http_sink

CHANNELS = "/api/v1/notifications/channels"
CONFIGS = "/api/v1/tasks/configs"


async def make_channel(client: httpx.AsyncClient, headers: dict, **body: object) -> dict:
    body = {"name": unique_username("ch"), "kind": "webhook",
            "config": {"url": "http://127.0.0.1:9/hook"}} | body  # fmt: skip
    response = await client.post(CHANNELS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_webhook_channel_keeps_its_secret_write_only(
    client: httpx.AsyncClient, superuser_headers: dict
) -> None:
    config = {"url": "https://hooks.example.com/taskhub", "secret": "s3cr3t", "headers": {}}
    created = await make_channel(client, superuser_headers, config=config)
    assert created["config"] == {**config, "secret": "***"}
    one = await client.get(f"{CHANNELS}/{created['id']}", headers=superuser_headers)
    assert one.json()["config"]["secret"] == "***"
    # Sent back as read (***), the secret stays; renamed, the audit says so.
    renamed = await client.patch(
        f"{CHANNELS}/{created['id']}",
        json={"name": created["name"] + "-2", "config": one.json()["config"]},
        headers=superuser_headers,
    )
    assert renamed.status_code == 200
    listed = (await client.get(CHANNELS, headers=superuser_headers)).json()
    assert created["id"] in [c["id"] for c in listed]
    audit = await client.get(
        "/api/v1/audit", params={"target_type": "channel", "target_id": created["id"]},
        headers=superuser_headers,
    )  # fmt: skip
    actions = [e["action"] for e in audit.json()["items"]]
    assert actions == ["channel.update", "channel.create"]
    assert "s3cr3t" not in audit.text
    deleted = await client.delete(f"{CHANNELS}/{created['id']}", headers=superuser_headers)
    assert deleted.status_code == 204


async def test_the_test_send_signs_the_body(
    client: httpx.AsyncClient, superuser_headers: dict
) -> None:
    async with http_sink() as sink:
        config = {"url": sink.url(), "secret": "s3cr3t", "headers": {"X-Team": "ops"}}
        channel = await make_channel(client, superuser_headers, config=config)
        result = await client.post(f"{CHANNELS}/{channel['id']}/test", headers=superuser_headers)
    assert result.json() == {"delivered": True, "status": 200, "error": None}
    [request] = sink.received
    expected = "sha256=" + hmac.new(b"s3cr3t", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-taskhub-signature"] == expected
    assert request.headers["x-taskhub-event"] == "test"
    assert request.headers["x-team"] == "ops"
    assert json.loads(request.body)["event"] == "test"


async def test_a_slack_channel_posts_text_and_a_failing_one_says_why(
    client: httpx.AsyncClient, superuser_headers: dict
) -> None:
    async with http_sink(answers=[200, 404]) as sink:
        slack = await make_channel(
            client, superuser_headers, kind="slack", config={"webhook_url": sink.url()}
        )
        assert slack["config"]["webhook_url"] == "***"
        ok = await client.post(f"{CHANNELS}/{slack['id']}/test", headers=superuser_headers)
        refused = await client.post(f"{CHANNELS}/{slack['id']}/test", headers=superuser_headers)
    assert ok.json()["delivered"] is True
    assert set(json.loads(sink.received[0].body)) == {"text"}
    assert refused.json() == {"delivered": False, "status": 404, "error": "answered 404"}
    closed = await make_channel(client, superuser_headers)  # port 9: nothing listens
    down = await client.post(f"{CHANNELS}/{closed['id']}/test", headers=superuser_headers)
    assert down.json()["delivered"] is False
    assert down.json()["error"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"kind": "pager", "config": {}}, ["body", "kind"]),
        ({"config": {"url": "ftp://example.com/x"}}, ["body", "config"]),
        ({"config": {"url": "not a url"}}, ["body", "config", "url"]),
        ({"kind": "slack", "config": {}}, ["body", "config", "webhook_url"]),
        ({"kind": "email", "config": {"to": ["ops@example.com"]}}, ["body", "kind"]),
    ],
)
async def test_bad_channels_are_422(
    client: httpx.AsyncClient, superuser_headers: dict, body: dict, loc: list
) -> None:
    full = {"name": unique_username("bad"), "kind": "webhook"} | body
    response = await client.post(CHANNELS, json=full, headers=superuser_headers)
    assert response.status_code == 422, response.text
    fields = response.json()["error"]["fields"]
    assert [f["loc"][: len(loc)] for f in fields][:1] == [loc]
    if body.get("kind") == "email":
        assert "SMTP_HOST" in response.json()["error"]["message"]


async def test_a_viewer_reads_channels_but_cannot_write_them(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict
) -> None:
    channel = await make_channel(client, superuser_headers)
    viewer = bearer_for((await create_user(session, username=unique_username("v"))).id)
    assert (await client.get(CHANNELS, headers=viewer)).status_code == 200
    writes = [
        await client.post(
            CHANNELS, json={"name": "x", "kind": "webhook", "config": {}}, headers=viewer
        ),
        await client.patch(f"{CHANNELS}/{channel['id']}", json={"name": "y"}, headers=viewer),
        await client.delete(f"{CHANNELS}/{channel['id']}", headers=viewer),
        await client.post(f"{CHANNELS}/{channel['id']}/test", headers=viewer),
    ]
    assert [w.status_code for w in writes] == [403, 403, 403, 403]


async def test_a_channel_in_use_cannot_be_deleted(
    client: httpx.AsyncClient, superuser_headers: dict
) -> None:
    channel = await make_channel(client, superuser_headers)
    alerts = {"channel_ids": [channel["id"]], "on": ["failure"]}
    config = await client.post(CONFIGS, json=sleep_config(alerts=alerts), headers=superuser_headers)
    assert config.status_code == 201, config.text
    assert config.json()["alerts"]["channel_ids"] == [channel["id"]]
    refused = await client.delete(f"{CHANNELS}/{channel['id']}", headers=superuser_headers)
    assert refused.status_code == 409
    assert config.json()["name"] in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"alerts": {"channel_ids": [2147483647]}}, ["body", "alerts", "channel_ids"]),
        ({"alerts": {"channel_ids": [1], "after_consecutive_failures": 0}}, ["body", "alerts"]),
        ({"alerts": {"channel_ids": [1], "after_consecutive_failures": 101}}, ["body", "alerts"]),
        ({"alerts": {"channel_ids": [1], "late_after_seconds": 0}}, ["body", "alerts"]),
        ({"alerts": {"channel_ids": [1], "on": ["late"]}}, ["body", "alerts"]),
        ({"alerts": {"channel_ids": [1], "on": ["sometimes"]}}, ["body", "alerts"]),
        ({"pause_after_failures": 0}, ["body", "pause_after_failures"]),
    ],
)
async def test_bad_alert_rules_are_422(
    client: httpx.AsyncClient, superuser_headers: dict, fields: dict, loc: list
) -> None:
    response = await client.post(CONFIGS, json=sleep_config(**fields), headers=superuser_headers)
    assert response.status_code == 422, response.text
    assert [f["loc"][: len(loc)] for f in response.json()["error"]["fields"]][:1] == [loc]


async def test_alert_settings_show_in_the_update_audit(
    client: httpx.AsyncClient, superuser_headers: dict
) -> None:
    channel = await make_channel(client, superuser_headers)
    config = (await client.post(CONFIGS, json=sleep_config(), headers=superuser_headers)).json()
    alerts = {"channel_ids": [channel["id"]], "on": ["failure", "late"], "late_after_seconds": 30}
    patched = await client.patch(
        f"{CONFIGS}/{config['id']}",
        json={"alerts": alerts, "pause_after_failures": 3},
        headers=superuser_headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["pause_after_failures"] == 3
    audit = await client.get(f"{CONFIGS}/{config['id']}/audit", headers=superuser_headers)
    changes = audit.json()["items"][0]["changes"]
    assert changes["pause_after_failures"] == [None, 3]
    assert changes["alerts"][0] is None
    assert changes["alerts"][1]["late_after_seconds"] == 30


async def test_a_note_goes_with_pause_resume_and_stop(
    client: httpx.AsyncClient, superuser_headers: dict
) -> None:
    body = sleep_config(scheduler_type="interval", schedule_config={"minutes": 5})
    config = (await client.post(CONFIGS, json=body, headers=superuser_headers)).json()
    url = f"{CONFIGS}/{config['id']}/actions"
    noted = await client.post(f"{url}/start", json={"note": "x"}, headers=superuser_headers)
    assert noted.status_code == 422
    assert (await client.post(f"{url}/start", headers=superuser_headers)).status_code == 200
    too_long = await client.post(
        f"{url}/pause", json={"note": "x" * 501}, headers=superuser_headers
    )
    assert too_long.status_code == 422
    paused = await client.post(
        f"{url}/pause", json={"note": "deploy freeze"}, headers=superuser_headers
    )
    assert paused.json()["schedule_note"] == "deploy freeze"
    history = await client.get(f"{CONFIGS}/{config['id']}/history", headers=superuser_headers)
    assert history.json()["items"][0]["note"] == "deploy freeze"
    resumed = await client.post(f"{url}/resume", headers=superuser_headers)
    assert resumed.json()["schedule_note"] is None
    await client.post(f"{url}/stop", headers=superuser_headers)
