"""Issue 29, items 2-4: what a wider DICOM corpus broke, each on a file the test writes with pydicom."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.errors import UnreadableFile
from medsearch.indexer.dicom_checks import MOSAIC_REASON
from medsearch.indexer.discover import discover
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.preprocess import Preprocessor
from medsearch.indexer.preview import model_input
from medsearch.indexer.readers import read_file
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

from tests.api_fixtures import index_store
from tests.indexer.test_dicom import ct_file, reason_of, write_dicom

PREPROCESSOR = Preprocessor(size=32)


def damaged_multiframe(path: Path, frames: int = 5, damaged: int = 3) -> Path:
    """An RLE Lossless file of ``frames`` 16 x 16 frames whose frame ``damaged`` (1-based) is cut short."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = "OT", generate_uid(), generate_uid()
    pixels = (np.arange(frames * 256).reshape(frames, 16, 16) * 7 % 251).astype(np.uint8)
    ds.NumberOfFrames = frames
    ds.set_pixel_data(pixels, "MONOCHROME2", 8)
    ds.compress(RLELossless, pixels)
    encoded = list(generate_frames(ds.PixelData, number_of_frames=frames))
    encoded[damaged - 1] = encoded[damaged - 1][:80]
    ds.PixelData = encapsulate(encoded)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_empty_lut_sequence_items_are_skipped(tmp_path: Path) -> None:
    plain = read_file(ct_file(tmp_path), ReadOptions())[0].pixels
    path = ct_file(tmp_path, ModalityLUTSequence=Sequence([Dataset()]), VOILUTSequence=Sequence([Dataset()]))
    assert len(dcmread(path).ModalityLUTSequence) == 1
    frame = read_file(path, ReadOptions())[0]
    np.testing.assert_array_equal(frame.pixels, plain)  # the rescale and the default window, as without them


def test_a_damaged_frame_is_left_out_and_the_others_kept(tmp_path: Path) -> None:
    path = damaged_multiframe(tmp_path / "cine.dcm")
    frames = read_file(path, ReadOptions(frames="all"))
    assert [frame.frame_number for frame in frames] == [1, 2, 4, 5]
    assert len(frames.damaged) == 1 and frames.damaged[0].startswith("frame 3: cannot decode pixel data")
    middle = read_file(path, ReadOptions())  # the middle frame (3) is the damaged one: its neighbour stands in
    assert [frame.frame_number for frame in middle] == [2] and middle.damaged[0].startswith("frame 3")


def test_preview_decodes_only_the_frame_it_shows(tmp_path: Path) -> None:
    path = damaged_multiframe(tmp_path / "cine.dcm", damaged=2)
    shown = model_input(path, ReadOptions(), PREPROCESSOR, frame_number=4)
    alone = model_input(path, ReadOptions(frames="all"), PREPROCESSOR)  # the nearest good frame to the middle
    assert shown.shape == (3, 32, 32) and not np.array_equal(shown, alone)
    with pytest.raises(UnreadableFile, match="frame 2"):
        model_input(path, ReadOptions(), PREPROCESSOR, frame_number=2)


def test_indexing_keeps_the_good_frames_and_records_the_damaged_one(tmp_path: Path, tiny_embedder: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    folder = tmp_path / "in"
    folder.mkdir()
    damaged_multiframe(folder / "cine.dcm")
    store = tmp_path / "store"
    with Medsearch.open(store, create=True, writable=True, embedder=tiny_embedder) as engine:
        report = engine.index([folder], IndexSettings(workers=0, read_options=ReadOptions(frames="all")))
    assert report.frames_added == 4 and report.added == 1
    with sqlite3.connect(store / "medsearch.db") as db:
        frames = [row[0] for row in db.execute("select frame_number from images order by frame_number")]
        reasons = [row[0] for row in db.execute("select reason from failures")]
    assert frames == [1, 2, 4, 5]
    assert len(reasons) == 1 and reasons[0].startswith("1 damaged frame(s) left out: frame 3:")


def test_a_window_that_saturates_the_image_falls_back_to_a_stretch(tmp_path: Path) -> None:
    path = ct_file(tmp_path, WindowCenter=30000, WindowWidth=10)  # every HU value lies below the window
    frame = read_file(path, ReadOptions())[0]
    assert float(frame.pixels.max()) == 1.0 and float(frame.pixels.min()) == 0.0
    assert "saturates the image; stretch minmax instead" in frame.metadata["voi"]
    robust = read_file(path, ReadOptions(voi="robust"))[0]
    assert float(robust.pixels.std()) > 0.1 and "stretch p0.5-p99.5 instead" in robust.metadata["voi"]


def test_a_headerless_dicom_without_extension_is_found_and_read(tmp_path: Path) -> None:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.Modality = "OT"
    ds.set_pixel_data(np.arange(64, dtype=np.uint8).reshape(8, 8), "MONOCHROME2", 8)
    del ds.file_meta  # a bare dataset: no preamble, no DICM, no file meta
    folder = tmp_path / "in"
    folder.mkdir()
    ds.save_as(folder / "IM0001", implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert (folder / "IM0001").read_bytes()[:2] == b"\x08\x00"  # no preamble, no DICM
    assert [Path(entry.path).name for entry in discover([folder])] == ["IM0001"]
    frame = read_file(folder / "IM0001", ReadOptions())[0]
    assert frame.pixels.shape == (8, 8) and frame.metadata["modality"] == "OT"


def test_truncated_pixel_data_is_one_clear_line(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "short.dcm", np.zeros((64, 64), dtype=np.uint16))
    ds = dcmread(path)
    ds.PixelData = ds.PixelData[:4096]  # consistent element length, but half the bytes 64 x 64 x 16 bits need
    ds.save_as(path, enforce_file_format=True)
    reason = reason_of(path)
    assert reason == ("truncated pixel data: 4096 bytes, but 64 x 64 x 1 samples x 1 frame(s) at 16 bits need 8192")


def test_a_missing_study_date_falls_back_to_series_then_acquisition_date(tmp_path: Path) -> None:
    series = write_dicom(tmp_path / "a.dcm", np.zeros((4, 4), np.uint8), SeriesDate="20210304",
                         AcquisitionDate="20200101")
    acquisition = write_dicom(tmp_path / "b.dcm", np.zeros((4, 4), np.uint8), AcquisitionDate="20200101")
    assert str(read_file(series, ReadOptions())[0].metadata["study_date"]) == "2021-03-04"
    assert str(read_file(acquisition, ReadOptions())[0].metadata["study_date"]) == "2020-01-01"


def test_a_siemens_mosaic_is_refused_with_a_reason(tmp_path: Path) -> None:
    tiles = np.zeros((64, 64), dtype=np.uint16)
    path = write_dicom(tmp_path / "mosaic.dcm", tiles, Modality="MR", Manufacturer="SIEMENS",
                       ImageType=["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"])
    assert reason_of(path) == MOSAIC_REASON


def test_images_outside_any_unit_are_counted(tmp_path: Path, tiny_embedder: Any) -> None:
    from medsearch.storage.store import Store
    from medsearch.storage.units import ids_without_unit

    folder = tmp_path / "in"
    folder.mkdir()
    write_dicom(folder / "with.dcm", np.eye(8, dtype=np.uint8), SeriesInstanceUID=generate_uid(),
                StudyInstanceUID=generate_uid())
    write_dicom(folder / "without.dcm", np.eye(8, dtype=np.uint8) * 3, StudyInstanceUID=generate_uid())
    index_store(tmp_path / "store", folder, tiny_embedder)
    with Store.open(tmp_path / "store") as store:
        assert len(ids_without_unit(store, "series")) == 1
        assert len(ids_without_unit(store, "study")) == 0

