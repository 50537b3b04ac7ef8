"""The plain types of reports, without SQLAlchemy: the indexer's decoding workers make ``RawReport``s."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StudyKey:
    """A study: its StudyInstanceUID, else (an image without one) the image's stored path."""

    study_uid: str | None = None
    image_path: str | None = None

    def name(self) -> str:
        return self.study_uid or f"path:{self.image_path}"


@dataclass(frozen=True)
class RawReport:
    """A report as found (a DICOM structured report while indexing): its study, its text, its source
    (``sr``) and the keyed hash of its accession number. Held in memory only, until read
    (``ReportStore.reader``)."""

    study: StudyKey
    text: str
    source: str = "sr"
    accession_key: str | None = None
