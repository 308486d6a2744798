"""RABBITMQ_QUEUE_TYPE: a run end to end on quorum queues (a single node declares them too),
and a queue that exists with the other type is a clear start-up error, not a stack trace."""

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.broker import QueueMismatch, build_broker
from backend.config import Settings, get_settings
from backend.main import attach_resources, create_app
from tests.support import processes
from tests.support.factories import create_config
from tests.support.runs import records
from tests.support.worker_process import AMQP_URL, Worker

pytestmark = pytest.mark.e2e

Names = dict[str, str]


def own_queue(suffix: str) -> Names:
    """Queue and exchange names of this test only (the session's queues are classic)."""
    name = f"{os.environ['RABBITMQ_QUEUE']}-{suffix}"
    return {"RABBITMQ_QUEUE": name, "RABBITMQ_EXCHANGE": name}


def queue_names(names: Names) -> list[str]:
    queue = names["RABBITMQ_QUEUE"]
    return [queue, f"{queue}.delay", f"{queue}.dead_letter"]


async def delete_queues(names: Names) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for name in queue_names(names):
            await channel.queue_delete(name)
        await channel.exchange_delete(names["RABBITMQ_EXCHANGE"])


async def queue_types(names: Names) -> dict[str, str]:
    """Each of the queues' type, as the RabbitMQ node lists it."""
    listed = await asyncio.to_thread(
        subprocess.run,
        ["rabbitmqctl", "list_queues", "--quiet", "--no-table-headers", "name", "type"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    types = dict(line.split("\t") for line in listed.stdout.splitlines() if "\t" in line)
    return {name: types.get(name, "missing") for name in queue_names(names)}


def settings_for(names: Names, queue_type: str) -> Settings:
    return get_settings().model_copy(
        update={
            "rabbitmq_queue": names["RABBITMQ_QUEUE"],
            "rabbitmq_exchange": names["RABBITMQ_EXCHANGE"],
            "rabbitmq_queue_type": queue_type,
        }
    )


@pytest.fixture
async def quorum_app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    """An app and a real worker on quorum queues of their own."""
    names = own_queue("quorum")
    env = {**names, "RABBITMQ_QUEUE_TYPE": "quorum"}
    worker = Worker(tmp_path_factory.mktemp("quorum") / "worker.log", env=env)
    await worker.start()
    settings = settings_for(names, "quorum")
    app = create_app(settings, broker=build_broker(settings))
    resources = attach_resources(app)
    try:
        yield app
    finally:
        worker.stop()
        await app.state.broker.shutdown()
        await resources.close()
        await delete_queues(names)


async def test_a_run_and_its_retry_go_end_to_end_through_quorum_queues(
    quorum_app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    superuser_headers: dict[str, str],
) -> None:
    config = await create_config(session, parameters={"seconds": 0, "fail": True}, max_retries=1)
    transport = httpx.ASGITransport(app=quorum_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        url = f"/api/v1/tasks/configs/{config.id}/run"
        response = await client.post(url, headers=superuser_headers)
    assert response.status_code == 202, response.text

    # It failed, waited in the delay queue, came back and failed for good: one record.
    found = await processes.eventually(lambda: records(sessionmaker, config.id), timeout=30)
    assert [(record.is_success, record.attempts) for record in found] == [(False, 2)]
    names = own_queue("quorum")
    assert set((await queue_types(names)).values()) == {"quorum"}


@pytest.fixture
async def classic_dead_letter_queue() -> AsyncIterator[Names]:
    """A queue of the set declared classic, as an earlier release (or setting) left it."""
    names = own_queue("changed")
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        arguments = {"x-queue-type": "classic"}
        await channel.declare_queue(queue_names(names)[2], durable=True, arguments=arguments)
    yield names
    await delete_queues(names)


async def test_changing_the_queue_type_is_a_clear_start_up_error(
    classic_dead_letter_queue: Names,
) -> None:
    names = classic_dead_letter_queue
    queue = names["RABBITMQ_QUEUE"]
    broker = build_broker(settings_for(names, "quorum"))
    try:
        with pytest.raises(QueueMismatch) as refused:
            await broker.startup()
    finally:
        await broker.shutdown()
    message = str(refused.value)
    assert f"queue '{queue}.dead_letter' exists as a classic queue" in message
    assert "RABBITMQ_QUEUE_TYPE is quorum" in message
    assert "RABBITMQ_QUEUE_TYPE=classic" in message
    assert f"delete {queue}, {queue}.delay and {queue}.dead_letter" in message

    # The scheduler process stops with that message, and no traceback.
    env = {**names, "RABBITMQ_QUEUE_TYPE": "quorum"}
    scheduler = processes.start_scheduler("scheduler-queue-type", **env)
    try:
        assert await asyncio.to_thread(scheduler.wait, 60) != 0
    finally:
        processes.stop(scheduler, kill=True)
    log = scheduler.log_path.read_text()  # type: ignore[attr-defined]
    assert "RABBITMQ_QUEUE_TYPE=classic" in log
    assert "Traceback" not in log
