"""A worker that cannot load its task modules stops as a whole, with a non-zero exit.

taskiq's process manager (the `taskiq worker` process) imports nothing of ours: its children
import `backend.worker`. A child that dies is restarted every second, forever (`--max-fails`
is off by default), and the manager exits 0 on SIGTERM or SIGINT. A task module that fails to
import fails in every child alike, so it is no crash to retry: the child ends the manager
with SIGUSR1, whose default action ends it with status 128 + 10, then raises itself.
"""

import multiprocessing
import os
import signal


def stop_the_process_manager() -> None:
    parent = multiprocessing.parent_process()
    if parent is None or not multiprocessing.current_process().name.startswith("worker-"):
        return  # not a taskiq worker child (a test importing the module, say)
    # Only while it is still our parent: once it is gone, getppid() names whoever adopted us.
    if parent.pid is not None and os.getppid() == parent.pid:
        os.kill(parent.pid, signal.SIGUSR1)
