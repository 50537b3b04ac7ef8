"""The store's reports (``store.reports``): write a batch of read reports, and read their labels per study
and per image, and the image ids whose report sentences match words.

A study key is a StudyInstanceUID, or an image path for an image that has none (``StudyKey``). Every
write bumps the fields version (``medsearch.storage.field_version``) in its transaction, so remembered
filter id sets that read ``report.*`` names are dropped by every process."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from medsearch.errors import MedsearchError
from medsearch.storage import field_version
from medsearch.storage.chunking import chunked
from medsearch.storage.models import Image
from medsearch.storage.report_models import FTS_TABLE, TSVECTOR, Report, ReportLabel, ReportSentence
from medsearch.storage.report_types import RawReport, StudyKey
from sqlalchemy import ColumnElement, and_, column, delete, false, func, insert, literal_column, or_, select, table
from sqlalchemy.orm import Session, sessionmaker

POLARITIES = ("positive", "negative", "uncertain")
NO_FINDING = "none"
"""The polarity of a sentence that mentions no finding (matched by report search only with ``any``)."""
_WORD = re.compile(r"\w+", re.UNICODE)
_FTS = table(FTS_TABLE, column("rowid"), column("text"))


@dataclass
class ReportRecord:
    """A read report, ready to store. ``sentences``: (finding or "", polarity or ``none``, text) rows."""

    study: StudyKey
    source: str
    label_set: str
    labeller_version: str
    labels: dict[str, str]
    sentences: list[tuple[str, str, str]]
    text: str | None = None
    accession_key: str | None = None
    replaced: bool = field(default=False)


class ReportStore:
    """Reports of one store; safe to share between threads (each call opens its own session)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self.reader: Callable[[RawReport], ReportRecord] | None = None
        """Reads a found report into a record (labels it); set by the layer that has a labeller
        (``medsearch.api.Medsearch``). Without one, found reports are not stored."""

    def take(self, found: Sequence[RawReport]) -> tuple[int, list[tuple[RawReport, str]]]:
        """Read and store reports found while indexing, in one transaction: (how many stored, [(report,
        why not)] for those not read). Nothing is stored without a ``reader``."""
        if self.reader is None:
            return 0, [(raw, "reports are read through medsearch.api (no report reader here)") for raw in found]
        records, refused = [], []
        for raw in found:
            try:
                records.append(self.reader(raw))
            except MedsearchError as error:
                refused.append((raw, str(error)))
        return self.write(records), refused

    # -- writing -------------------------------------------------------------------------------

    def write(self, records: Sequence[ReportRecord]) -> int:
        """Store ``records`` in one transaction, each replacing its study's earlier report (``replaced`` is
        set on those; of two records of one study, the later is stored). Returns how many were stored."""
        latest = list({record.study: record for record in records}.values())
        with self._sessions.begin() as session:
            old = _old_reports(session, [record.study for record in latest])
            for record in latest:
                record.replaced = record.study in old
            _delete_reports(session, list(old.values()))
            ids = session.scalars(insert(Report).returning(Report.id, sort_by_parameter_order=True), [
                {"study_uid": r.study.study_uid, "image_path": r.study.image_path, "accession_key": r.accession_key,
                 "source": r.source, "label_set": r.label_set, "labeller_version": r.labeller_version,
                 "text": r.text} for r in latest]).all() if latest else []
            _insert_rows(session, latest, ids)
            if latest:
                field_version.bump(session)
        return len(latest)

    # -- reading -------------------------------------------------------------------------------

    def count(self) -> int:
        """How many studies have a report."""
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(Report)) or 0

    def findings(self) -> list[str]:
        """The findings that some report labels, sorted."""
        with self._sessions() as session:
            return sorted(session.scalars(select(ReportLabel.finding).distinct()))

    def study_labels(self, finding: str) -> dict[str, str]:
        """{study key: polarity} for ``finding``: the StudyInstanceUID, or ``path:<image path>`` for a
        report matched to an image without one."""
        with self._sessions() as session:
            rows = session.execute(select(Report.study_uid, Report.image_path, ReportLabel.polarity)
                                   .join(ReportLabel, ReportLabel.report_id == Report.id)
                                   .where(ReportLabel.finding == finding))
            return {StudyKey(uid, path).name(): polarity for uid, path, polarity in rows}

    def image_labels(self, finding: str, image_ids: Iterable[int] | None = None) -> dict[int, str]:
        """{image id: polarity} for ``finding``, for every image of a labelled study (only among
        ``image_ids`` when given)."""
        with self._sessions() as session:
            labelled = (select(Image.id, ReportLabel.polarity)
                        .join(Report, _image_matches_report())
                        .join(ReportLabel, ReportLabel.report_id == Report.id)
                        .where(ReportLabel.finding == finding))
            if image_ids is None:
                return {image_id: polarity for image_id, polarity in session.execute(labelled)}
            rows = chunked(list(image_ids), lambda chunk: session.execute(labelled.where(Image.id.in_(chunk))))
            return {image_id: polarity for image_id, polarity in rows}

    def search_ids(self, words: Sequence[str], polarities: Collection[str],
                   findings: Collection[str] = ()) -> np.ndarray:
        """The ids (int64, sorted) of images whose study's report matches (``search_clause``)."""
        with self._sessions() as session:
            clause = search_clause(session.get_bind().dialect.name, words, polarities, findings)
            found = session.scalars(select(Image.id).where(clause).order_by(Image.id))
            return np.fromiter(found, dtype=np.int64)

    def study_of_path(self, path: str) -> StudyKey | None:
        """The study of the indexed image at ``path`` (its StudyInstanceUID, else the path), or None."""
        with self._sessions() as session:
            found = session.execute(select(Image.study_instance_uid).where(Image.path == path).limit(1)).first()
        if found is None:
            return None
        return StudyKey(study_uid=found[0]) if found[0] else StudyKey(image_path=path)

    def studies_of_accession(self, key: str) -> list[str]:
        """The StudyInstanceUIDs of the indexed images whose accession number has the keyed hash ``key``."""
        with self._sessions() as session:
            rows = session.scalars(select(Image.study_instance_uid).distinct()
                                   .where(Image.accession_key == key, Image.study_instance_uid.is_not(None)))
            return sorted(str(uid) for uid in rows)


def _old_reports(session: Session, studies: list[StudyKey]) -> dict[StudyKey, int]:
    """{study: its stored report's id} for the ``studies`` that have one."""
    uids = [study.study_uid for study in studies if study.study_uid]
    paths = [study.image_path for study in studies if not study.study_uid and study.image_path]
    by_uid = chunked(uids, lambda chunk: session.execute(
        select(Report.id, Report.study_uid).where(Report.study_uid.in_(chunk))))
    by_path = chunked(paths, lambda chunk: session.execute(
        select(Report.id, Report.image_path).where(Report.image_path.in_(chunk))))
    found = {StudyKey(study_uid=uid): report_id for report_id, uid in by_uid}
    found.update({StudyKey(image_path=path): report_id for report_id, path in by_path})
    return found


def _delete_reports(session: Session, report_ids: list[int]) -> None:
    """Delete reports with their labels, sentences and (SQLite) full-text rows."""
    for start in range(0, len(report_ids), 500):
        chunk = report_ids[start:start + 500]
        if _is_sqlite(session):
            sentence_ids = select(ReportSentence.id).where(ReportSentence.report_id.in_(chunk))
            session.execute(delete(_FTS).where(_FTS.c.rowid.in_(sentence_ids)))
        session.execute(delete(ReportSentence).where(ReportSentence.report_id.in_(chunk)))
        session.execute(delete(ReportLabel).where(ReportLabel.report_id.in_(chunk)))
        session.execute(delete(Report).where(Report.id.in_(chunk)))


def _insert_rows(session: Session, records: list[ReportRecord], ids: Sequence[int]) -> None:
    """The labels and sentences of ``records`` (stored as reports ``ids``), and the sentences' full text."""
    labels = [{"report_id": report_id, "finding": finding, "polarity": polarity}
              for record, report_id in zip(records, ids, strict=True) for finding, polarity in record.labels.items()]
    if labels:
        session.execute(insert(ReportLabel), labels)
    sentences = [{"report_id": report_id, "finding": finding, "polarity": polarity, "text": text}
                 for record, report_id in zip(records, ids, strict=True)
                 for finding, polarity, text in record.sentences]
    if not sentences:
        return
    sentence_ids = session.scalars(insert(ReportSentence).returning(ReportSentence.id, sort_by_parameter_order=True),
                                   sentences).all()
    if _is_sqlite(session):
        session.execute(insert(_FTS), [{"rowid": sentence_id, "text": row["text"]}
                                       for sentence_id, row in zip(sentence_ids, sentences, strict=True)])


def label_counts(session: Session, clause: ColumnElement[bool]) -> dict[str, list[tuple[str, int]]]:
    """{finding: [(polarity, images), ...] most first} over the images matching ``clause`` (the page's
    facet lists of the ``report.<finding>`` fields)."""
    rows = session.execute(select(ReportLabel.finding, ReportLabel.polarity, func.count(Image.id))
                           .join(Report, _image_matches_report())
                           .join(ReportLabel, ReportLabel.report_id == Report.id).where(clause)
                           .group_by(ReportLabel.finding, ReportLabel.polarity)
                           .order_by(ReportLabel.finding, func.count(Image.id).desc(), ReportLabel.polarity))
    counts: dict[str, list[tuple[str, int]]] = {}
    for finding, polarity, images in rows:
        counts.setdefault(finding, []).append((polarity, int(images)))
    return counts


def _image_matches_report() -> ColumnElement[bool]:
    return or_(Image.study_instance_uid == Report.study_uid,
               (Report.study_uid.is_(None)) & (Image.path == Report.image_path))


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def label_clause(finding: str, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """Images (a clause over ``Image``) of studies whose label for ``finding`` meets ``condition`` (a
    clause over ``ReportLabel.polarity``)."""
    reports = (select(Report.study_uid, Report.image_path).join(ReportLabel, ReportLabel.report_id == Report.id)
               .where(ReportLabel.finding == finding, condition))
    return _images_of(reports)


def words_of(text: str) -> list[str]:
    """The lower-case words of a report search, as the full-text index splits them."""
    return [word.lower() for word in _WORD.findall(text)]


def search_clause(dialect: str, words: Sequence[str], polarities: Collection[str],
                  findings: Collection[str] = ()) -> ColumnElement[bool]:
    """Images (a clause over ``Image``) of studies with a report sentence holding every word in ``words``
    and of a polarity in ``polarities`` (one mention's; ``none`` for a sentence without one), about one of
    ``findings`` when given. No words: ``false``."""
    if not words:
        return false()
    if dialect == "sqlite":
        query = " ".join('"' + word.replace('"', '""') + '"' for word in words)
        matched: ColumnElement[bool] = ReportSentence.id.in_(
            select(_FTS.c.rowid).where(literal_column(FTS_TABLE).op("MATCH")(query)))
    else:
        matched = TSVECTOR.op("@@")(func.plainto_tsquery(literal_column("'simple'::regconfig"), " ".join(words)))
    conditions = [matched, ReportSentence.polarity.in_(list(polarities))]
    if findings:
        conditions.append(ReportSentence.finding.in_(list(findings)))
    reports = (select(Report.study_uid, Report.image_path)
               .join(ReportSentence, ReportSentence.report_id == Report.id).where(*conditions))
    return _images_of(reports)


def _images_of(reports) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    found = reports.subquery()
    by_study = and_(Image.study_instance_uid.is_not(None),
                    Image.study_instance_uid.in_(select(found.c.study_uid).where(found.c.study_uid.is_not(None))))
    by_path = Image.path.in_(select(found.c.image_path).where(found.c.image_path.is_not(None)))
    return or_(by_study, by_path)
