"""The peer: the stock taskiq scheduler on taskiq-redis's ListRedisScheduleSource.

`taskiq scheduler bench.stock_scheduler:scheduler --skip-first-run`: cron entries held in
memory, no claims, no next-run bookkeeping. It sends with Taskhub's broker settings (classic
queue with x-max-priority 9, persistent messages) through taskiq-aio-pika's own kick.
"""

import os

from taskiq import TaskiqScheduler
from taskiq.serializers import JSONSerializer
from taskiq_aio_pika import AioPikaBroker
from taskiq_redis import ListRedisScheduleSource

from backend.broker import broker_options
from backend.config import get_settings

PREFIX_VARIABLE = "BENCH_STOCK_PREFIX"


def build_source() -> ListRedisScheduleSource:
    return ListRedisScheduleSource(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        prefix=os.environ.get(PREFIX_VARIABLE, "bench-stock"),
        serializer=JSONSerializer(),
        skip_past_schedules=True,
    )


# The library's own kick (not Taskhub's batched one, backend/publisher.py): the stock sender.
broker = AioPikaBroker(**broker_options(get_settings()))
scheduler = TaskiqScheduler(broker=broker, sources=[build_source()])
