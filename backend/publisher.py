"""The one publish path of run now and the scheduler: `send` (the message taskiq's kicker
would make, without its machinery) through taskiq-aio-pika's broker with a kick that writes
the publishes started together in one socket write, confirms pipelined.

taskiq-aio-pika's own kick builds an aio-pika Message and a new Exchange object per publish,
and aiormq then takes the channel lock, writes the frames and waits for the socket to drain,
once per message: about 0.6 ms of CPU a publish, most of a scheduler's minute-boundary burst.
Here the publishes made in one event-loop iteration (a burst's sends, concurrent run-now
requests) are written under one lock as one frame batch, and each waits only for its own
publisher confirm; the next batch is written while earlier confirms are outstanding.

Same guarantees as the library's kick: each publish returns once RabbitMQ confirmed it
(Basic.Ack), and raises (taskiq wraps it in SendTaskError) when RabbitMQ nacks it or the
channel closes before the confirm. A caller cancelled before its batch is written publishes
nothing. Delayed messages and label-routed queues go through the library's kick.
"""

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiormq
from aio_pika.abc import AbstractRobustChannel
from aiormq.abc import ChannelFrame
from aiormq.exceptions import ChannelInvalidStateError
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader
from taskiq import AsyncBroker, BrokerMessage, TaskiqMessage
from taskiq.exceptions import SendTaskError
from taskiq.labels import prepare_label
from taskiq_aio_pika import AioPikaBroker
from taskiq_aio_pika.broker import parse_val

MAX_BATCH = 500  # publishes per socket write (about 300 kB at Taskhub's message size)
# Confirms outstanding at most: aiormq walks every outstanding confirm on each of RabbitMQ's
# `multiple` acks, so a burst of 10,000 unbounded costs more than its publishes.
MAX_UNCONFIRMED = 1000
PERSISTENT = 2  # AMQP delivery mode


async def send(
    broker: AsyncBroker,
    *,
    task_name: str,
    task_id: str,
    labels: Mapping[str, Any],
    kwargs: dict[str, Any],
) -> None:
    """Publish one call of `task_name` (run now, a scheduled fire): the message taskiq's
    `AsyncKicker(task_name, broker, labels).with_task_id(task_id).kiq(**kwargs)` makes,
    labels in their wire form and the body the broker's formatter's, handed to the broker's
    kick, without the kicker's machinery (a kicker, a task handle, a message validated
    twice): a tenth of a scheduled fire's CPU. The kicker's middleware send hooks are not
    run: no middleware of Taskhub's has one. Raises SendTaskError, as kiq does."""
    prepared: dict[str, Any] = {}
    types: dict[str, int] = {}
    for name, value in labels.items():
        prepared[name], types[name] = prepare_label(value)
    message = TaskiqMessage(
        task_id=task_id, task_name=task_name, labels=prepared, labels_types=types,
        args=[], kwargs=kwargs,
    )  # fmt: skip
    try:
        await broker.kick(broker.formatter.dumps(message))
    except Exception as exc:
        raise SendTaskError from exc


@dataclass
class _Publish:
    body: bytes
    properties: spec.Basic.Properties
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PipelinedBroker(AioPikaBroker):
    """AioPikaBroker whose kick batches publishes (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[_Publish] = []
        self._flusher: asyncio.Task[None] | None = None
        self._publish_loop: asyncio.AbstractEventLoop | None = (
            None  # the state below is this loop's
        )
        self._unconfirmed = 0
        self._room: asyncio.Future[None] | None = None  # set when confirms free the window

    async def kick(self, message: BrokerMessage) -> None:
        if message.labels.get("delay") is not None or len(self._task_queues) != 1:
            await super().kick(message)
            return
        if self.write_channel is None:
            await super().kick(message)  # raises the library's NoStartupError
            return
        publish = _Publish(
            body=message.message,
            properties=spec.Basic.Properties(
                headers={"task_id": message.task_id, "task_name": message.task_name,
                         **message.labels},
                delivery_mode=PERSISTENT,
                priority=parse_val(int, message.labels.get(self._label_for_priority)),
            ),
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        if loop is not self._publish_loop:
            # The broker is built at import and may outlive an event loop (tests, a second
            # asyncio.run): what the old loop left (a flusher, confirms) will never settle.
            self._publish_loop, self._pending, self._flusher = loop, [], None
            self._unconfirmed, self._room = 0, None
        self._pending.append(publish)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await publish.done

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the publishes started in the same iteration join this batch
        try:
            while self._pending:
                while self._unconfirmed >= MAX_UNCONFIRMED:
                    self._room = asyncio.get_running_loop().create_future()
                    await self._room
                batch = [p for p in self._pending[:MAX_BATCH] if not p.done.done()]
                del self._pending[:MAX_BATCH]
                try:
                    await self._write(batch)
                except Exception as exc:  # every publish of the batch fails with it
                    for publish in batch:
                        if not publish.done.done():
                            publish.done.set_exception(exc)
        finally:
            self._flusher = None

    async def _write(self, batch: list[_Publish]) -> None:
        if not batch:
            return
        channel = self.write_channel
        assert isinstance(channel, AbstractRobustChannel)
        if channel.is_closed:
            raise ChannelInvalidStateError(f"{channel!r} closed")
        amqp = await channel.get_underlay_channel()
        assert isinstance(amqp, aiormq.Channel)
        assert amqp.publisher_confirms
        queue = self._task_queues[0]
        publish_frame = spec.Basic.Publish(
            exchange=self._exchange.name, routing_key=queue.routing_key or queue.name
        )
        loop = asyncio.get_running_loop()
        async with amqp.lock:  # aiormq's: delivery tags in the order the frames are written
            frames: list[Any] = []
            confirmations: dict[int, asyncio.Future[Any]] = {}
            # A future of aiormq's (in the channel's and the connection's future stores,
            # rejected when the channel closes) for the batch rather than for each publish:
            # those stores cost 7% of a burst's CPU, one a publish.
            guard = amqp.create_future()
            left = _Countdown(len(batch), guard)
            for publish in batch:
                amqp.delivery_tag += 1
                confirmation = confirmations[amqp.delivery_tag] = loop.create_future()
                confirmation.add_done_callback(self._settle(publish.done, left))
                self._unconfirmed += 1
                frames += [
                    publish_frame,
                    ContentHeader(properties=publish.properties, body_size=len(publish.body)),
                    *_chunks(publish.body, amqp.max_content_size),
                ]
            amqp.confirmations.update(confirmations)
            guard.add_done_callback(_fail_unconfirmed(list(confirmations.values())))
            drained = amqp.create_future()
            try:
                await amqp.write_queue.put(
                    ChannelFrame.marshall(
                        channel_number=amqp.number, frames=frames, drain_future=drained
                    )
                )
                await drained
            except BaseException:  # not written, or not known to be: no confirm will come
                for tag, confirmation in confirmations.items():
                    amqp.confirmations.pop(tag, None)
                    confirmation.cancel()
                raise

    def _settle(
        self, done: asyncio.Future[None], left: "_Countdown"
    ) -> Callable[[asyncio.Future[Any]], None]:
        """Pass a publisher confirm (or the channel's failure) on to the waiting kick."""

        def copy(confirmation: asyncio.Future[Any]) -> None:
            self._unconfirmed -= 1
            left.tick()
            room = self._room
            if room is not None and not room.done() and self._unconfirmed < MAX_UNCONFIRMED:
                room.set_result(None)
            if done.done():
                return
            if confirmation.cancelled():
                done.set_exception(ChannelInvalidStateError("publish not confirmed"))
            elif (error := confirmation.exception()) is not None:
                done.set_exception(error)
            else:
                done.set_result(None)

        return copy


class _Countdown:
    """Settles a batch's guard once each of its publishes has its confirm (or failure): the
    guard then leaves aiormq's future stores."""

    __slots__ = ("_guard", "_left")

    def __init__(self, count: int, guard: asyncio.Future[Any]) -> None:
        self._left = count
        self._guard = guard

    def tick(self) -> None:
        self._left -= 1
        if self._left == 0 and not self._guard.done():
            self._guard.set_result(None)


def _fail_unconfirmed(
    confirmations: list[asyncio.Future[Any]],
) -> Callable[[asyncio.Future[Any]], None]:
    """Once the batch's guard is rejected (the channel closed), its publishes still waiting
    for a confirm fail: none would come."""

    def fail(guard: asyncio.Future[Any]) -> None:
        error = None if guard.cancelled() else guard.exception()
        if error is None and not guard.cancelled():
            return  # every publish of the batch settled
        for confirmation in confirmations:
            if confirmation.done():
                continue
            if error is None:
                confirmation.cancel()
            else:
                confirmation.set_exception(error)

    return fail


def _chunks(body: bytes, size: int) -> list[ContentBody]:
    return [ContentBody(body[i : i + size]) for i in range(0, len(body), size)]
