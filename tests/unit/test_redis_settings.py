"""Redis Sentinel settings and the claim replicas they imply."""

import pytest
from pydantic import ValidationError

from backend.config import Settings
from backend.services.redis.keys import client_for


def test_sentinels_are_comma_separated_and_imply_one_claim_replica() -> None:
    settings = Settings(
        redis_sentinels="10.0.0.1:26379, sentinel-b:26380",  # type: ignore[arg-type]
        redis_sentinel_master="taskhub",
    )
    assert settings.redis_sentinels == ["10.0.0.1:26379", "sentinel-b:26380"]
    assert settings.claim_replicas == 1
    assert Settings(redis_claim_replicas=2).claim_replicas == 2
    assert Settings().claim_replicas == 0  # one Redis: no WAIT


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"redis_sentinels": "a:26379"}, "go together"),
        ({"redis_sentinel_master": "taskhub"}, "go together"),
        ({"redis_sentinels": "a", "redis_sentinel_master": "m"}, "not host:port"),
    ],
)
def test_half_a_sentinel_setup_is_refused(fields: dict[str, str], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        Settings(**fields)  # type: ignore[arg-type]


async def test_the_sentinel_client_takes_database_and_password_from_redis_url() -> None:
    settings = Settings(
        redis_url="redis://:s3cret@ignored:6379/4",
        redis_sentinels="127.0.0.1:1",  # type: ignore[arg-type]
        redis_sentinel_master="taskhub",
    )
    client = client_for(settings)  # no I/O until used
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["db"], kwargs["password"]) == (4, "s3cret")
        assert client.connection_pool.service_name == "taskhub"  # type: ignore[attr-defined]
    finally:
        await client.aclose()
