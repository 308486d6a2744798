"""The cycle collector tuned for the long-lived processes (the API, the scheduler).

With Python's thresholds (700, 10, 10) young collections ran every few requests or fires, and
each full one walked every object of the process, start-up's too (some 150,000: modules,
classes, schemas, routes): up to 150 ms with every request in flight waiting (the API's p99),
about a third of the scheduler's CPU in a burst. Collected less often, with start-up's objects
frozen (they live as long as the process; frozen, they are still freed once unreferenced), it
costs a few percent.
"""

import gc

# A list page allocates thousands of objects: at 700 a young collection ran every few
# requests, walking the objects of every request in flight (a tenth of the page's CPU).
API_THRESHOLDS = (7_000, 10, 10)
# A burst allocates several containers per fire that outlive a young collection (its task,
# futures, message): at Python's thresholds a 5,000-fire burst ran some 500 young and several
# full collections.
SCHEDULER_THRESHOLDS = (10_000, 20, 10)


def tune(thresholds: tuple[int, int, int]) -> None:
    """Once started: collect, freeze what is left, and set the collector's `thresholds`.

    Once per process: later calls in it (the tests' apps and schedulers) change nothing."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*thresholds)
