"""The scheduler process: `taskiq scheduler backend.scheduler:scheduler`."""

from taskiq import TaskiqScheduler
from taskiq.serializers import JSONSerializer
from taskiq_redis import ListRedisScheduleSource

from backend.broker import broker
from backend.config import get_settings
from backend.services.redis.keys import key

settings = get_settings()

# JSON, not pickle: schedule entries in Redis stay readable and safe to load.
schedule_source = ListRedisScheduleSource(
    settings.redis_url, prefix=key("schedule"), serializer=JSONSerializer()
)

scheduler = TaskiqScheduler(broker=broker, sources=[schedule_source])
