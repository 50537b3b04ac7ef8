"""QIDO-RS filters from the user's options, and the identity of the instances a search returns.

Filters are DICOM attribute keywords -> values (``{"Modality": "CR,DX", "StudyDate": "20240101-20241231"}``).
A comma-separated Modality asks one search per modality (multiple-value matching is optional in QIDO-RS),
and the answers are merged by SOP Instance UID.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from medsearch.errors import InvalidQuery
from medsearch.indexer.dicomweb.source import SourceError, valid_uid

STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"
STUDY_INSTANCES = "00201208"
_DATE_RANGE = re.compile(r"^(\d{8})?(-)?(\d{8})?$")


@dataclass(frozen=True)
class RemoteInstance:
    """An instance found on the source: its stored ``path`` (a WADO-RS location) and its study."""

    path: str
    study_uid: str


def make_filters(modality: str | None = None, study_date: str | None = None, body_part: str | None = None,
                 extra: Iterable[str] = ()) -> dict[str, str]:
    """QIDO filters from the CLI's options; ``extra`` holds ``KEYWORD=VALUE`` items for any attribute.
    Raises InvalidQuery for an unknown keyword, a malformed date range or an item without ``=``."""
    filters: dict[str, str] = {}
    for item in extra:
        keyword, equals, value = item.partition("=")
        if not equals or not keyword.strip():
            raise InvalidQuery(f"bad QIDO filter {item!r}: expected KEYWORD=VALUE, e.g. BodyPartExamined=CHEST")
        filters[_keyword(keyword.strip())] = value.strip()
    if modality:
        filters["Modality"] = ",".join(part.strip().upper() for part in modality.split(",") if part.strip())
    if body_part:
        filters["BodyPartExamined"] = body_part.strip().upper()
    if study_date:
        filters["StudyDate"] = study_date.strip()
    if "StudyDate" in filters:
        date_range(filters["StudyDate"])
    return filters


def _keyword(name: str) -> str:
    from pydicom.datadict import dictionary_keyword, keyword_for_tag, tag_for_keyword

    if tag_for_keyword(name) is not None:
        return name
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name) and keyword_for_tag(int(name, 16)):
        return dictionary_keyword(int(name, 16))
    raise InvalidQuery(f"unknown DICOM attribute {name!r} in a QIDO filter (use a keyword such as Modality)")


def date_range(text: str) -> tuple[dt.date | None, dt.date | None]:
    """``YYYYMMDD``, ``YYYYMMDD-``, ``-YYYYMMDD`` or ``YYYYMMDD-YYYYMMDD`` -> (first, last), either open.
    Raises InvalidQuery."""
    match = _DATE_RANGE.match(text.strip())
    if not match or not (match[1] or match[3]) or (match[3] and not match[2] and match[1]):
        raise InvalidQuery(f"bad study date {text!r}: expected YYYYMMDD, YYYYMMDD-YYYYMMDD, YYYYMMDD- or -YYYYMMDD")
    try:
        first = dt.datetime.strptime(match[1], "%Y%m%d").date() if match[1] else None
        last = dt.datetime.strptime(match[3], "%Y%m%d").date() if match[3] else None
    except ValueError:
        raise InvalidQuery(f"bad study date {text!r}: not a calendar date") from None
    return (first, first) if match[1] and not match[2] else (first, last)


def since(filters: dict[str, str], start: dt.date) -> dict[str, str] | None:
    """``filters`` with StudyDate narrowed to ``start`` onwards, or None when that leaves no date."""
    first, last = date_range(filters["StudyDate"]) if "StudyDate" in filters else (None, None)
    first = max(first, start) if first else start
    if last is not None and first > last:
        return None
    return {**filters, "StudyDate": f"{first:%Y%m%d}-{last:%Y%m%d}" if last else f"{first:%Y%m%d}-"}


def each_search(filters: dict[str, str]) -> Iterator[dict[str, str]]:
    """One filter set per searched modality (or the filters as they are)."""
    modalities = [m for m in filters.get("Modality", "").split(",") if m]
    if len(modalities) <= 1:
        yield filters
        return
    for modality in modalities:
        yield {**filters, "Modality": modality}


def first_value(item: dict[str, Any], tag: str) -> Any:
    """The first value of ``tag`` in a DICOM JSON object, or None."""
    element = item.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return values[0] if isinstance(values, list) and values else None


def identity(item: dict[str, Any]) -> tuple[str, str, str]:
    """(study, series, SOP instance) UIDs of a QIDO instance result. Raises SourceError when one is missing
    or is not a valid UID (it would become part of a WADO-RS URL)."""
    uids = tuple(first_value(item, tag) for tag in (STUDY_UID, SERIES_UID, SOP_UID))
    if not all(isinstance(uid, str) and uid for uid in uids):
        raise SourceError("malformed QIDO-RS response: an instance result lacks its Study, Series or SOP "
                          "Instance UID")
    bad = next((uid for uid in uids if not valid_uid(uid)), None)
    if bad is not None:
        raise SourceError(f"malformed QIDO-RS response: {str(bad)[:80]!r} is not a DICOM UID (digits and dots, "
                          "at most 64 characters): the listing cannot be trusted")
    return uids  # type: ignore[return-value]
