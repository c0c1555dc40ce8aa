"""Building a large exam without the cyclic garbage collector reading it again and again.

Parsing and validating a 40 MB exam allocates millions of objects that all stay alive: the parsed
data, then the models. CPython's cyclic collector runs every few hundred allocations, and as the
tree grows it traverses the whole of it again (in CPython 3.11, each time the tree grew by a
quarter): half of ``validate``'s CPU time on such a file. None of these objects needs the
collector (they hold no reference cycles; reference counting frees them), so while a large input
is built the collector is paused. Once it is built, what lives is moved to the collector's
permanent generation (:func:`gc.freeze`), so later passes (rendering, a run's records) skip it
too; those objects are still freed by reference counting when dropped. A collection just before
the pause (tens of milliseconds, and only for a large input) leaves no earlier garbage to be
frozen with them. A build that fails is not frozen: its objects are garbage, collected as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

LARGE = 1_000_000
"""Input size (characters) from which the pause pays: below it the collector costs milliseconds."""


@contextmanager
def collector_paused(size: int) -> Iterator[None]:
    """Pause the cyclic collector while an input of ``size`` characters is built (when it is at
    least :data:`LARGE` and the collector is on), then freeze what the build left alive."""
    if size < LARGE or not gc.isenabled():
        yield
        return
    gc.collect()
    gc.disable()
    built = False
    try:
        yield
        built = True
    finally:
        if built:
            gc.freeze()
        gc.enable()


YOUNG = 10_000
"""Allocations of tracked objects between collections of the youngest generation in a command's
own process (CPython's default: 700). A run allocates millions of short-lived objects (requests,
replies, records); at 700 a 2,651-item run made about 600 young, 50 middle and 4 full collections,
each full one traversing everything the run holds: 0.8 s of its 16 s of CPU. At 10,000: about 30
young ones, one middle, no full one (0.2 s), for at most that many objects' worth of cyclic garbage
freed a little later."""


def space_collections() -> None:
    """Collect the youngest generation every :data:`YOUNG` allocations (only for a process of the
    command's own: the setting is process-wide)."""
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])


def settle(own_process: bool) -> None:
    """Move every object alive now (modules, classes, compiled patterns: loaded once, alive until
    the process exits) to the collector's permanent generation, so that the collections a long
    command triggers do not traverse them again and again. Only in a process of the command's own
    (``own_process``): a frozen object that later became part of a garbage cycle would stay until
    exit, harmless there but a leak in a test run or a library user's process."""
    if own_process:
        gc.freeze()
