"""DICOM attributes -> the typed metadata of ``medsearch.storage.models.Image``, without patient identity.

Identity (names, ids, birth dates, addresses, institution, referring physician, accession number) never
enters the metadata, except as the ``identity`` JSON string when ``ReadOptions.keep_identity`` is set.
Patients can still be grouped through ``patient_key``: an HMAC-SHA256 of the Patient ID under a secret
(see ``medsearch.storage.patient_key``), so it cannot be reversed or recomputed without the secret. By default the
secret is a file inside the store, so a copy of the whole store can recompute pseudonyms from guessed IDs;
kept outside it (``--patient-key FILE`` or MEDSEARCH_PATIENT_KEY), the store holds only a fingerprint of it
and a copy reveals nothing. While reading,
``quiet_pydicom`` keeps pydicom's warnings (which can quote element values) out of warnings and logs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from medsearch.indexer.frames import ReadOptions

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# Column sizes of medsearch.storage.models.Image (a test keeps them equal), so that this module need not
# import SQLAlchemy in decoding workers.
STRING_COLUMNS: dict[str, tuple[str, int]] = {
    "study_instance_uid": ("StudyInstanceUID", 64),
    "series_instance_uid": ("SeriesInstanceUID", 64),
    "sop_instance_uid": ("SOPInstanceUID", 64),
    "modality": ("Modality", 16),
    "body_part": ("BodyPartExamined", 64),
    "view_position": ("ViewPosition", 16),
    "series_description": ("SeriesDescription", 256),
    "manufacturer": ("Manufacturer", 128),
    "photometric_interpretation": ("PhotometricInterpretation", 32),
}
TRANSFER_SYNTAX_LENGTH = 64
PATIENT_KEY_LENGTH = 32
IDENTITY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "OtherPatientIDs",
    "PatientAddress",
    "InstitutionName",
    "ReferringPhysicianName",
    "AccessionNumber",
)
_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$", re.IGNORECASE)
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def file_metadata(ds: Dataset, options: ReadOptions, transfer_syntax: str | None) -> dict[str, Any]:
    """Metadata shared by every frame of ``ds`` (``frame_number`` is added per frame by the reader).

    Keys are ``medsearch.storage.models.METADATA_COLUMNS`` names and ``accession_key``, plus ``identity`` only when
    ``options.keep_identity``. Missing or malformed attributes give None; never raises.
    """
    meta: dict[str, Any] = {"file_format": "dicom"}
    meta["width"] = _int(_get(ds, "Columns"))
    meta["height"] = _int(_get(ds, "Rows"))
    for column, (keyword, length) in STRING_COLUMNS.items():
        meta[column] = clean_text(_get(ds, keyword), length)
    meta["study_date"] = study_date(ds)
    meta["transfer_syntax"] = clean_text(transfer_syntax, TRANSFER_SYNTAX_LENGTH)
    sex = (clean_text(_get(ds, "PatientSex"), 8) or "").upper()
    meta["patient_sex"] = sex if sex in ("M", "F", "O") else None
    meta["patient_age"] = parse_age(_get(ds, "PatientAge"))
    meta["patient_key"] = patient_key(_get(ds, "PatientID"), options.patient_key_secret)
    meta["accession_key"] = accession_key(_get(ds, "AccessionNumber"), options.patient_key_secret)
    burned = (clean_text(_get(ds, "BurnedInAnnotation"), 8) or "").upper()
    meta["burned_in_annotation"] = {"YES": True, "NO": False}.get(burned)
    if options.keep_identity:
        meta["identity"] = identity_json(ds)
    return meta


def study_date(ds: Dataset) -> dt.date | None:
    """The Study Date; when it is missing or malformed, the Series Date, then the Acquisition Date."""
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate"):
        found = parse_date(_get(ds, keyword))
        if found is not None:
            return found
    return None


def clean_text(value: Any, max_length: int) -> str | None:
    """An attribute value -> a stripped string without NUL bytes, at most ``max_length`` characters;
    multiple values are joined with a backslash (DICOM's own separator). Empty -> None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    elif isinstance(value, Sequence) and not isinstance(value, str):
        value = "\\".join(str(item) for item in value)
    text = str(value).replace("\x00", "").strip()
    return text[:max_length] or None


def parse_date(value: Any) -> dt.date | None:
    """A DA value (``YYYYMMDD``, or the old ``YYYY.MM.DD``) -> ``datetime.date``; anything else -> None."""
    text = (clean_text(value, 16) or "").replace(".", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def parse_age(value: Any) -> float | None:
    """An AS value (``045Y``, ``006M``, ``010W``, ``003D``) -> age in years (float); else None."""
    match = _AGE.match(clean_text(value, 16) or "")
    if match is None:
        return None
    return int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2).upper()]


def patient_key(patient_id: Any, secret: bytes | None) -> str | None:
    """HMAC-SHA256 of the stripped Patient ID under ``secret``: 32 hex characters. None without a
    secret or without a Patient ID."""
    text = clean_text(patient_id, 1024)
    if not secret or text is None:
        return None
    digest = hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:PATIENT_KEY_LENGTH]


def accession_key(accession: Any, secret: bytes | None) -> str | None:
    """The keyed hash of the stripped Accession Number under the patient-key secret, with a label of its own
    (it never equals a patient key): 32 hex characters. Reports keyed by accession number find their study
    through it. None without a secret or a number."""
    text = clean_text(accession, 1024)
    if not secret or text is None:
        return None
    digest = hmac.new(secret, b"medsearch accession\x00" + text.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:PATIENT_KEY_LENGTH]


def identity_json(ds: Dataset) -> str:
    """The identifying attributes as a JSON object of strings (null when absent). Only for the
    explicit ``keep_identity`` opt-in."""
    identity = {keyword: clean_text(_get(ds, keyword), 4096) for keyword in IDENTITY_KEYWORDS}
    return json.dumps(identity, ensure_ascii=False, sort_keys=True)


def _get(ds: Dataset, keyword: str) -> Any:
    """``ds.keyword`` or None: absent, or a value pydicom cannot convert (never raises)."""
    try:
        return ds.get(keyword)
    except Exception:  # malformed values raise on conversion (ValueError, UnicodeDecodeError...)
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings and warning logs while reading: they can quote element values,
    and element values can identify patients."""
    logger = logging.getLogger("pydicom")
    below_error = _BelowErrorFilter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger.addFilter(below_error)
        try:
            yield
        finally:
            logger.removeFilter(below_error)


class _BelowErrorFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR
