"""Hostile and odd inputs of the report readers, without a model: report CSVs (size, encoding, columns,
NUL bytes, ragged and empty rows, line numbers of quoted multi-line rows), structured reports (nesting,
evidence, budgets, no text) and the de-identification rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from medsearch.errors import InvalidQuery, UnreadableFile
from medsearch.indexer import dicom_sr
from medsearch.indexer.dicom_sr import ReportFound, is_structured_report, read_report
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.readers import read_file
from medsearch.reports import csv_import
from medsearch.reports.csv_import import parse_reports_csv
from medsearch.reports.deidentify import Vocabulary, query_words
from pydicom import dcmread

from tests.reports.report_data import COMPREHENSIVE_SR, ENHANCED_SR, container, text_item, write_sr


def test_csv_rows_keys_and_lines() -> None:
    data = (b"Accession_Number,Other,Report\n"
            b'A1,x,"First line.\nSecond line."\n'
            b",x,No key here.\n"
            b"A3,x\n"
            b"\n"
            b"A4,x,   \n"
            b"A5,x,Fine.\n")
    parsed = parse_reports_csv(data)
    assert (parsed.key, parsed.key_column) == ("accession", "Accession_Number")
    assert [(row.line, row.key) for row in parsed.rows] == [(2, "A1"), (8, "A5")]
    assert parsed.rows[0].text == "First line.\nSecond line."
    assert [bad["line"] for bad in parsed.bad] == [4, 5, 7]
    assert [bad["reason"] for bad in parsed.bad] == ["no accession", "2 fields where the header has 3",
                                                     "the report is empty"]


@pytest.mark.parametrize(("data", "key", "message"), [
    (b"", None, "empty"),
    (b"uid,report\n1.2,x\n", None, "no key column"),
    (b"study_uid,notes\n1.2,x\n", None, "no report column"),
    (b"study_uid,report\n1.2,x\n", "path", "no key column \\(path\\)"),
    (b"study_uid,report\n1.2,x\n", "mrn", "unknown key 'mrn'"),
    (b"study_uid,report\n1.2,\xe9t\xe9\n", None, "not UTF-8 text \\(byte 21\\)"),
    (b"study_uid,report\n1.2,a\x00b\n", None, "line 2: a NUL byte"),
    (b"study_uid,report\n1.2,\"" + b"x" * 200_000 + b"\"\n", None, "line 2: field larger than field limit"),
])
def test_a_bad_csv_is_refused_whole(data: bytes, key: str | None, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        parse_reports_csv(data, key)


def test_csv_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_import, "MAX_BYTES", 100)
    with pytest.raises(InvalidQuery, match="larger than"):
        parse_reports_csv(b"study_uid,report\n" + b"1.2,x\n" * 30)
    monkeypatch.setattr(csv_import, "MAX_BYTES", 10_000)
    monkeypatch.setattr(csv_import, "MAX_ROWS", 5)
    with pytest.raises(InvalidQuery, match="more than 5 rows"):
        parse_reports_csv(b"study_uid,report\n" + b"1.2,x\n" * 6)
    assert len(parse_reports_csv(b"study_uid,report\n" + b"1.2,x\n" * 5).rows) == 5


def test_study_uid_keys_must_be_uids() -> None:
    parsed = parse_reports_csv(b"study_uid,report\n1.2.3,ok\n1.2.x,bad\n" + b"1." * 40 + b"1,long\n")
    assert [row.key for row in parsed.rows] == ["1.2.3"]
    assert [bad["line"] for bad in parsed.bad] == [3, 4]


def test_structured_reports_are_read_from_their_content_tree(tmp_path: Path) -> None:
    path = write_sr(tmp_path / "sr.dcm", "1.2.3", ["Small right pleural effusion", "No pneumothorax."],
                    ENHANCED_SR, own_study="9.9.9")
    ds = dcmread(path)
    ds.ContentSequence.append(container("Impression", [text_item("Possible pneumonia?"), container(
        "Nested", [text_item("Deep text.")])]))
    ds.save_as(path)
    with pytest.raises(ReportFound) as found:
        read_file(path, ReadOptions(patient_key_secret=b"s" * 32))
    report = found.value.report
    assert report.study.study_uid == "1.2.3"  # the evidence's study, not the SR's own
    assert report.text == "Small right pleural effusion.\nNo pneumothorax.\nPossible pneumonia?\nDeep text."
    assert report.accession_key is not None and "ACC" not in report.accession_key
    assert "structured report" in found.value.reason


def test_structured_report_budgets_and_faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_sr(tmp_path / "sr.dcm", "1.2.3", ["x."] * 5, COMPREHENSIVE_SR)
    ds = dcmread(path)
    assert is_structured_report(ds)
    monkeypatch.setattr(dicom_sr, "MAX_ITEMS", 4)
    with pytest.raises(UnreadableFile, match="more than 4 items"):
        read_report(ds, None)
    monkeypatch.setattr(dicom_sr, "MAX_ITEMS", 100)
    nested = text_item("deep.")
    for _level in range(40):
        nested = container("Level", [nested])
    ds.ContentSequence = [nested]
    with pytest.raises(UnreadableFile, match="deeper than 32"):
        read_report(ds, None)
    ds.ContentSequence = [container("Empty", [])]
    with pytest.raises(UnreadableFile, match="without text"):
        read_report(ds, None)
    del ds.StudyInstanceUID
    with pytest.raises(UnreadableFile, match="without a StudyInstanceUID"):
        read_report(ds, None)


def test_deidentified_sentences_keep_only_known_words() -> None:
    vocabulary = Vocabulary.build(["pleural_effusion", "pneumothorax"], ["enlarged cardiac silhouette"])
    sentence = ("Mr Harold Quimby (MRN 77310001, DOB 1950-01-01, acc#A77) has a small RIGHT pleural effusion, "
                "2024pneumothorax, seen by Dr Pettigrew on 05/11/2023 at 14:05.")
    assert vocabulary.deidentify(sentence) == "small right pleural effusion"
    assert vocabulary.deidentify("Called Jane Doe at 555-0199.") == ""
    assert query_words("No right-sided Pneumothorax") == ["right", "sided", "pneumothorax"]


def test_labels_from_mentions_equal_the_labellers() -> None:
    from medsearch.reports.reading import ReportReader, report_labels

    from tests.reports.report_data import REPORTS
    from tests.reports.sentence_set import SENTENCES

    labeller = ReportReader().labeller
    texts = [*REPORTS.values(), " ".join(line.split("\t")[0] for line in SENTENCES.read_text().splitlines()[1:200])]
    for text in texts:
        assert report_labels(labeller.mentions(text)) == labeller.label(text)
