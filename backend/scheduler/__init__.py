"""The scheduler process: `taskiq scheduler backend.scheduler:scheduler --update-interval 0`.

`--update-interval 0` refreshes the schedules on every one-second tick. With 1, taskiq's loop
compares tick times that drift by milliseconds and skips every other refresh at random, so an
entry queued by start/resume could reach memory a tick after its fire time.

The room: sender.py (the send and its retries), source.py (the schedule source: due entries,
claims, post-send bookkeeping; its Redis calls batched by backend/batching.py), reconcile.py
(misfires, top-ups, deleted configs).
"""

import logging

from backend.broker import broker
from backend.config import get_settings
from backend.log import configure_logging
from backend.scheduler.sender import TaskhubScheduler
from backend.scheduler.source import TaskhubScheduleSource

__all__ = ["scheduler"]

configure_logging()
# taskiq logs every send at INFO; each send is a `fired` history event already, and at a
# minute boundary with thousands of schedules those lines cost the sends real time. Its
# other lines (start-up, errors) stay.
logging.getLogger("taskiq.cli.scheduler.run").addFilter(
    lambda record: not str(record.msg).startswith("Sending task")  # the format, unformatted
)
schedule_source = TaskhubScheduleSource(get_settings())
scheduler = TaskhubScheduler(broker=broker, sources=[schedule_source])
