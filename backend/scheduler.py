"""The scheduler process: `taskiq scheduler backend.scheduler:scheduler --update-interval 1`."""

from taskiq import TaskiqScheduler

from backend.broker import broker
from backend.config import get_settings
from backend.log import configure_logging
from backend.schedule_source import TaskhubScheduleSource

configure_logging()
schedule_source = TaskhubScheduleSource(get_settings())
scheduler = TaskiqScheduler(broker=broker, sources=[schedule_source])
