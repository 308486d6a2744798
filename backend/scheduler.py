"""The scheduler process: `taskiq scheduler backend.scheduler:scheduler --update-interval 1`."""

import logging

from taskiq import TaskiqScheduler

from backend.broker import broker
from backend.config import get_settings
from backend.log import configure_logging
from backend.schedule_source import TaskhubScheduleSource

configure_logging()
# taskiq logs every send at INFO; each send is a `fired` history event already, and at a
# minute boundary with thousands of schedules those lines cost the sends real time.
logging.getLogger("taskiq.cli.scheduler.run").setLevel(logging.WARNING)
schedule_source = TaskhubScheduleSource(get_settings())
scheduler = TaskiqScheduler(broker=broker, sources=[schedule_source])
