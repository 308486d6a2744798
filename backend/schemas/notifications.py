"""Notification channels, per-config alert rules, and deliveries."""

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AnyUrl, BaseModel, ConfigDict, EmailStr, Field, model_validator

from backend import ssrf
from backend.config import get_settings
from backend.models import AlertEvent, ChannelKind, DeliveryStatus
from backend.schemas.common import WHOLE, Id, Name, RequestBody, Text, UpdateBody

MASK = "***"  # what a response shows of a write-only secret
HttpUrl = Annotated[AnyUrl, Field(max_length=2000)]


def _http(url: AnyUrl) -> AnyUrl:
    if url.scheme not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    # The SSRF guard's literal check; a host name is checked when the notifier connects.
    refused = ssrf.literal_refusal(url.host, get_settings().http_task_allowed_networks)
    if refused:
        raise ValueError(refused)
    return url


class WebhookConfig(RequestBody):
    url: HttpUrl
    secret: Annotated[Text, Field(max_length=500)] | None = None
    headers: dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=2000)]] = (
        Field(default_factory=dict, max_length=20)
    )

    @model_validator(mode="after")
    def _http_only(self) -> Self:
        _http(self.url)
        return self


class SlackConfig(RequestBody):
    webhook_url: HttpUrl

    @model_validator(mode="after")
    def _http_only(self) -> Self:
        _http(self.webhook_url)
        return self


class EmailConfig(RequestBody):
    to: list[EmailStr] = Field(min_length=1, max_length=20)


CONFIG_MODELS: dict[str, type[RequestBody]] = {
    "webhook": WebhookConfig,
    "slack": SlackConfig,
    "email": EmailConfig,
}
SECRET_KEYS = {"webhook": ("secret",), "slack": ("webhook_url",), "email": ()}


class ChannelCreate(RequestBody):
    name: Name
    kind: ChannelKind
    config: dict[str, Any]


class ChannelUpdate(UpdateBody):
    name: Name | None = None
    config: dict[str, Any] | None = None


class ChannelRead(BaseModel):
    id: int
    name: str
    kind: ChannelKind
    config: dict[str, Any] = Field(description="Secrets (`secret`, Slack's URL) read `***`")
    created_at: datetime
    updated_at: datetime


class TestDelivery(BaseModel):
    delivered: bool
    status: int | None = Field(description="The HTTP status answered, if any")
    error: str | None


ConsecutiveFailures = Annotated[int, Field(ge=1, le=100), WHOLE]


class AlertRules(RequestBody):
    channel_ids: list[Id] = Field(min_length=1, max_length=20)
    on: list[AlertEvent] = Field(default=["failure", "recovery"], min_length=1)
    after_consecutive_failures: ConsecutiveFailures = 1
    late_after_seconds: Annotated[int, Field(ge=1, le=86400), WHOLE] | None = None

    @model_validator(mode="after")
    def _late_needs_a_limit(self) -> Self:
        if "late" in self.on and self.late_after_seconds is None:
            raise ValueError("`late` in `on` needs late_after_seconds")
        return self


class Note(RequestBody):
    note: Annotated[Text, Field(max_length=500)] | None = None


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    event: str
    channel_id: int | None
    config_id: int | None
    status: DeliveryStatus
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


EventKind = Literal["failure", "recovery", "missed", "late", "paused", "test"]
