"""Sending one notification to one channel: a webhook POST (HMAC-signed), a Slack
incoming-webhook post, or an e-mail over SMTP. Returns what happened; raises nothing for a
channel that fails, since a failing channel must never fail what caused the event.

Webhook and Slack posts go through the SSRF guard (backend/ssrf.py), like `http.request`:
a destination in a refused range is a final failure, not retried."""

import hashlib
import hmac
import json
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from backend import ssrf
from backend.config import Settings

SIGNATURE_HEADER = "X-Taskhub-Signature"
EVENT_HEADER = "X-Taskhub-Event"


@dataclass(frozen=True)
class Sent:
    delivered: bool
    status: int | None = None
    error: str | None = None
    final: bool = False  # a 4xx: retrying would not help

    @classmethod
    def of_response(cls, response: httpx.Response) -> "Sent":
        if response.is_success:
            return cls(delivered=True, status=response.status_code)
        final = 400 <= response.status_code < 500
        return cls(False, response.status_code, f"answered {response.status_code}", final)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def describe(payload: dict[str, Any]) -> str:
    """The event in one line of text, for Slack and e-mail."""
    config = payload.get("config") or {}
    run = payload.get("run") or {}
    words = f"Taskhub: {payload['event']} of {config.get('name', '?')!r}"
    if payload.get("consecutive_failures"):
        words += f" ({payload['consecutive_failures']} failures in a row)"
    if run.get("error_message"):
        words += f": {run['error_message']}"
    if payload.get("fire_time"):
        words += f" (fire at {payload['fire_time']})"
    return f"{words}\n{payload.get('console_url', '')}".rstrip()


async def send(
    kind: str, config: dict[str, Any], payload: dict[str, Any], *, settings: Settings
) -> Sent:
    timeout = settings.notification_timeout_seconds
    try:
        if kind == "email":
            return await _email(config, payload, settings=settings)
        allowed = settings.http_task_allowed_networks
        async with ssrf.client(allowed, timeout=timeout) as client:
            if kind == "webhook":
                return await _webhook(client, config, payload)
            return await _slack(client, config, payload)
    except ssrf.DestinationRefused as exc:
        return Sent(delivered=False, error=str(exc)[:500], final=True)
    except (httpx.HTTPError, aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Sent(delivered=False, error=f"{type(exc).__name__}: {exc}"[:500])


async def _webhook(
    client: httpx.AsyncClient, config: dict[str, Any], payload: dict[str, Any]
) -> Sent:
    body = json.dumps(payload).encode()
    headers = {**config.get("headers", {}), "content-type": "application/json"}
    headers[EVENT_HEADER] = payload["event"]
    if config.get("secret"):
        headers[SIGNATURE_HEADER] = signature(config["secret"], body)
    return Sent.of_response(await client.post(config["url"], content=body, headers=headers))


async def _slack(
    client: httpx.AsyncClient, config: dict[str, Any], payload: dict[str, Any]
) -> Sent:
    response = await client.post(config["webhook_url"], json={"text": describe(payload)})
    return Sent.of_response(response)


async def _email(config: dict[str, Any], payload: dict[str, Any], *, settings: Settings) -> Sent:
    if settings.smtp_host is None:
        return Sent(delivered=False, error="SMTP_HOST is not set", final=True)
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(config["to"])
    message["Subject"] = describe(payload).splitlines()[0]
    message.set_content(describe(payload) + "\n\n" + json.dumps(payload, indent=2))
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=password,
        start_tls=settings.smtp_starttls,
        timeout=settings.notification_timeout_seconds,
    )
    return Sent(delivered=True)
