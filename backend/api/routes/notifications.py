"""Notification channels (admins write, viewers read), their test send, and deliveries."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from backend.api.access import CurrentPrincipal
from backend.api.deps import SessionDep, SettingsDep
from backend.models import DeliveryStatus, NotificationChannel
from backend.schemas.common import Id, Offset, Page
from backend.schemas.notifications import (
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    DeliveryRead,
    TestDelivery,
)
from backend.services import notifications

router = APIRouter(prefix="/notifications", tags=["notifications"])


async def valid_channel_id(channel_id: Id, session: SessionDep) -> NotificationChannel:
    return await notifications.get_channel(session, channel_id=channel_id)


ValidChannel = Annotated[NotificationChannel, Depends(valid_channel_id)]
NAME_TAKEN: dict[int | str, dict[str, Any]] = {409: {"description": "The name is taken"}}


@router.post("/channels", status_code=status.HTTP_201_CREATED, responses=NAME_TAKEN)
async def create_channel(
    body: ChannelCreate, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal
) -> ChannelRead:
    return await notifications.create_channel(
        session, data=body, settings=settings, actor=principal.actor
    )


@router.get("/channels")
async def list_channels(session: SessionDep) -> list[ChannelRead]:
    return await notifications.list_channels(session)


@router.get("/channels/{channel_id}")
async def get_channel(channel: ValidChannel) -> ChannelRead:
    return notifications.present(channel)


@router.patch("/channels/{channel_id}", responses=NAME_TAKEN)
async def update_channel(
    channel: ValidChannel,
    body: ChannelUpdate,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> ChannelRead:
    return await notifications.update_channel(
        session, channel=channel, data=body, settings=settings, actor=principal.actor
    )


@router.delete(
    "/channels/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "A config's alert rules use the channel"}},
)
async def delete_channel(
    channel: ValidChannel, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    await notifications.delete_channel(session, channel=channel, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/channels/{channel_id}/test")
async def test_channel(channel: ValidChannel, settings: SettingsDep) -> TestDelivery:
    return await notifications.send_test(channel, settings=settings)


@router.get("/deliveries")
async def list_deliveries(
    session: SessionDep,
    channel_id: Id | None = None,
    config_id: Id | None = None,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> Page[DeliveryRead]:
    items, total = await notifications.deliveries_page(
        session, channel_id=channel_id, config_id=config_id, status=status,
        limit=limit, offset=offset,
    )  # fmt: skip
    return Page(
        items=[DeliveryRead.model_validate(d) for d in items],
        total=total,
        limit=limit,
        offset=offset,
    )
