"""Tasks for the kept worker's test, in a module light to import (the worker imports it to run them)."""

from __future__ import annotations

import os
import time


def crash_or_double(item: int) -> int:
    """``item * 2``; a negative ``item`` kills the worker process."""
    if item < 0:
        os._exit(3)
    return item * 2


def hang(seconds: float) -> None:
    time.sleep(seconds)
