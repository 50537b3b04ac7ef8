"""A store folder that a failed first run created is removed again: ``medsearch index`` without a model
must not leave ``./medsearch-store/`` (a database and a lock file) behind for the next command to trip on."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def store_exists(directory: Path) -> bool:
    """Whether ``directory`` (as ``--store`` gives it) exists before the command opens it."""
    return Path(directory).expanduser().exists()


@contextmanager
def removed_if_failed(ms: Any, existed: bool) -> Iterator[None]:
    """Run the body; when it raises, ``existed`` is false (this run created the folder) and the store holds
    no image, close ``ms`` (a ``Medsearch``) and remove the store's folder, then re-raise. A store that
    holds images, or that was there before, is never touched."""
    try:
        yield
    except (Exception, KeyboardInterrupt):
        if not existed and _empty(ms):
            directory = ms.store.directory
            ms.close()
            shutil.rmtree(directory, ignore_errors=True)
        raise


def _empty(ms: Any) -> bool:
    try:
        return int(ms.store.image_count()) == 0
    except Exception:  # a store that cannot even be counted is kept, as found
        return False
