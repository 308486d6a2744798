"""Test session isolation: its own database, Redis key prefix and RabbitMQ queue names.

The environment is set before anything imports `backend`, so every Settings object (in this
process and in the worker/scheduler processes the tests start) sees the isolated names.
"""

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator

RUN_ID = uuid.uuid4().hex[:10]
TEST_DB = f"taskhub_test_{RUN_ID}"
os.environ.update(
    {
        "ENVIRONMENT": "test",
        "DATABASE_URL": f"postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/{TEST_DB}",
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "REDIS_PREFIX": f"taskhub-test-{RUN_ID}",
        "RABBITMQ_QUEUE": f"taskhub-test-{RUN_ID}",
        "RABBITMQ_EXCHANGE": f"taskhub-test-{RUN_ID}",
        "JWT_SECRET": "test-secret-" + "x" * 32,
        "FIRST_SUPERUSER": "admin@example.com",
        "FIRST_SUPERUSER_PASSWORD": "admin-password",
        # The SSRF guard refuses loopback; the tests' HTTP sinks listen on 127.0.0.1.
        "HTTP_TASK_ALLOWED_NETWORKS": "127.0.0.0/8",
        # prometheus-client's multiprocess mode, shared with the worker and scheduler the
        # tests start; a fresh directory per session, so no other run's samples leak in.
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix=f"taskhub-metrics-{RUN_ID}-"),
    }
)

import httpx  # noqa: E402
import pytest  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker  # noqa: E402

from tests.support import infra  # noqa: E402
from tests.support.auth import CHEAP_HASHER, bearer_for  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def test_database() -> Iterator[str]:
    url = os.environ["DATABASE_URL"]
    asyncio.run(infra.create_database(url))
    infra.migrate(url, "head")
    yield url
    asyncio.run(infra.cleanup(url))


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Every password this process hashes or checks, at the cost of tests.support.auth's
    CHEAP_HASHER (still argon2id; the cost is pwdlib's business, not the API's)."""
    from backend import security

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "_hasher", CHEAP_HASHER)
        security._dummy_hash.cache_clear()  # made with the hasher in use
        yield
    security._dummy_hash.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def metrics_directory() -> Iterator[str]:
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
async def session_redis() -> AsyncIterator[Redis]:
    """A client of the session's Redis of its own: a test's fixtures may point the settings
    elsewhere (a Redis of their own, a down one) while it runs."""
    from backend.services.redis.keys import create_client

    client = create_client(os.environ["REDIS_URL"])
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
async def no_schedule_left_active(session_redis: Redis) -> AsyncIterator[None]:
    """Forget, once a test is over, every schedule it left active. The session shares one
    Redis prefix, so such a schedule would fire through every scheduler a later test starts,
    into that test's queue. Every way a test starts one (an action, auto_start, an apply, the
    CLI, a process of its own) ends in the `active` status set, so that is what is compared;
    being autouse, this is set up before, and torn down after, the test's other fixtures."""
    from backend.services import schedule_entries
    from backend.services.redis import scheduler as schedule_state

    before = await schedule_state.ids_with_status(session_redis, "active")
    yield
    for config_id in await schedule_state.ids_with_status(session_redis, "active") - before:
        await schedule_entries.forget(session_redis, config_id)


@pytest.fixture(scope="session")
async def app() -> AsyncIterator[FastAPI]:
    from backend.main import create_app

    application = create_app()
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def sessionmaker(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    return app.state.resources.sessionmaker


@pytest.fixture
async def session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as db:
        yield db


@pytest.fixture
def redis(app: FastAPI) -> Redis:
    return app.state.resources.redis


@pytest.fixture(scope="session")
async def superuser_headers(app: FastAPI) -> dict[str, str]:
    from backend.services import users

    async with app.state.resources.sessionmaker() as db:
        admin = await users.get_by_email(db, email=os.environ["FIRST_SUPERUSER"])
        assert admin is not None
        return bearer_for(admin.id)
