"""buffer_one: a scheduled run that came while its config had a run in flight waits in Redis
(the `timeout` store's waiting slot, with its message); when the last run in flight is
recorded, the same Redis transaction lets it go, and the worker that wrote that record sends
its message again, here. If that worker dies before sending it, the run is still live in
Redis, due at the end of a lease: a reaper then sends it again (duplicates are dropped by
its attempt claim), so a waiting run is never lost silently.
"""

import asyncio
import logging
from collections.abc import Sequence

from taskiq import TaskiqMessage

from backend.broker import broker
from backend.config import get_settings

logger = logging.getLogger(__name__)


async def send_again(messages: Sequence[str]) -> None:
    """Send each let-go run (its delivery, as JSON) to the task queue; never raises: a run not
    sent stays due in Redis, and a reaper sends it after the lease. Bounded in time: the
    record buffer calls it, and must not wait on a broker that hangs."""
    timeout = get_settings().broker_send_timeout_seconds
    for text in messages:
        message = TaskiqMessage.model_validate_json(text)
        try:
            await asyncio.wait_for(broker.kick(broker.formatter.dumps(message)), timeout)
        except Exception:
            # Recovered, not swallowed: the reaper sends it again when its lease ends.
            logger.exception(
                "sending waiting run %s failed; a reaper sends it again", message.task_id
            )
        else:
            logger.info(
                "waiting run %s of %s sent: its turn came", message.task_id, message.task_name
            )
