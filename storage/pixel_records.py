"""Queries on how each image's pixels were made (``Image.voi``, ``read_options``,
``preprocessing_version``): which images are stale, how a stored image was read, which options the
store used. ``version`` is the current preprocessing version (``medsearch.indexer.preprocess``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsearch.storage.models import Image
from medsearch.storage.store import Store
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select


def stale_condition(version: str, key: str | None = None) -> ColumnElement[bool]:
    """Images of another preprocessing version than ``version`` (or none recorded), or, when ``key`` is
    given, greyscale DICOMs read with other VOI options than ``key``."""
    condition = or_(Image.preprocessing_version.is_(None), Image.preprocessing_version != version)
    if key is not None:
        condition = or_(condition, and_(Image.read_options.is_not(None), Image.read_options != key))
    return condition


def stale_paths(version: str, key: str | None = None) -> Select[Any]:
    """The distinct paths of the images ``stale_condition`` selects."""
    return select(Image.path).where(stale_condition(version, key)).distinct()


def stale_count(store: Store, version: str) -> int:
    """How many images are of another preprocessing version than ``version``."""
    with store.read_session() as session:
        return session.scalar(select(func.count()).select_from(Image).where(stale_condition(version))) or 0


def stale_files(store: Store, version: str) -> list[tuple[str, str | None, bool, int]]:
    """(path, read options, identity kept, rows) of every file with a stale image, sorted by path."""
    stale = stale_paths(version).subquery()
    kept = func.max(case((Image.identity.is_not(None), 1), else_=0))
    query = (select(Image.path, func.max(Image.read_options), kept, func.count())
             .where(Image.path.in_(select(stale.c.path))).group_by(Image.path).order_by(Image.path))
    with store.read_session() as session:
        return [(path, key, bool(identity), rows) for path, key, identity, rows in session.execute(query)]


def most_used_read_key(store: Store) -> str | None:
    """The read options most of the store's greyscale DICOM images were read with (None: none recorded)."""
    with store.read_session() as session:
        return session.scalar(select(Image.read_options).where(Image.read_options.is_not(None))
                              .group_by(Image.read_options).order_by(func.count().desc()).limit(1))


def read_key_counts(store: Store) -> dict[str, int]:
    """How many greyscale DICOM images were read with each set of read options."""
    with store.read_session() as session:
        rows = session.execute(select(Image.read_options, func.count()).where(Image.read_options.is_not(None))
                               .group_by(Image.read_options).order_by(Image.read_options))
        return {str(key): count for key, count in rows}


def image_source(store: Store, image_id: int) -> tuple[str, int, str | None, bool] | None:
    """(path, frame number, read options, whether its identity was kept) of a stored image; None when
    there is no such id."""
    with store.read_session() as session:
        row = session.execute(select(Image.path, Image.frame_number, Image.read_options, Image.identity)
                              .where(Image.id == image_id)).first()
    return None if row is None else (row[0], row[1], row[2], row[3] is not None)


def id_of_path(store: Store, path: Path) -> int | None:
    """The id of an indexed file's first frame, or None when it is not indexed."""
    with store.read_session() as session:
        return session.scalar(select(Image.id).where(Image.path == str(path.resolve()))
                              .order_by(Image.frame_number).limit(1))


def text_counts(store: Store) -> dict[str, int]:
    """Images whose pixels carry identity (``info``'s ``burned_in_text``): ``with_text`` (the detector read
    words in them, ``text_regions > 0``), ``flagged`` (Burned In Annotation YES), ``either``, and
    ``unchecked`` (``text_regions`` NULL: indexed before the detector, or without it)."""
    with_text = Image.text_regions > 0
    flagged = Image.burned_in_annotation.is_(True)
    counts = (func.count(case((with_text, 1))), func.count(case((flagged, 1))),
              func.count(case((or_(with_text, flagged), 1))), func.count(case((Image.text_regions.is_(None), 1))))
    with store.read_session() as session:
        row = session.execute(select(*counts).select_from(Image)).one()
    return dict(zip(("with_text", "flagged", "either", "unchecked"), (int(value) for value in row), strict=True))


def text_marks(store: Store, image_id: int) -> tuple[bool, int | None, bool]:
    """(flagged Burned In Annotation YES, words the detector read when indexing (None when unchecked),
    identity kept) of one image: what decides whether a picture of it is masked. Unknown ids give
    (False, None, False)."""
    with store.read_session() as session:
        row = session.execute(select(Image.burned_in_annotation, Image.text_regions, Image.identity)
                              .where(Image.id == image_id)).first()
    if row is None:
        return False, None, False
    return bool(row[0]), row[1], row[2] is not None
