"""The DICOM reader on synthetic files written here and on pydicom's own test files: display pixels,
frames, metadata without identity, bad input, and crash-isolated decoding."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.errors import InvalidQuery, UnreadableFile
from medsearch.indexer.dicom import DicomReader
from medsearch.indexer.dicom_codestream import codestream_size
from medsearch.indexer.dicom_meta import STRING_COLUMNS, parse_age, parse_date, patient_key
from medsearch.indexer.frames import Frame, ReadOptions
from medsearch.indexer.isolation import DecodeGuard
from medsearch.indexer.readers import read_file
from medsearch.indexer.workers import CRASHED, Limits
from medsearch.storage.models import METADATA_COLUMNS, Image
from pydicom import dcmread
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array
from pydicom.uid import (
    MPEG2MPML,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    JPEG2000Lossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from tests.indexer.worker_read import TEST_LIMITS, read_in_worker

READER = DicomReader()
IDENTITY = {
    "PatientName": "Doe^Jane",
    "PatientID": "PID-0042",
    "PatientBirthDate": "19790101",
    "OtherPatientIDs": "OTHER-77",
    "PatientAddress": "1 Main Street",
    "InstitutionName": "General Hospital",
    "ReferringPhysicianName": "House^Gregory",
    "AccessionNumber": "ACC-991",
}


def file_dataset(sop_class: str) -> Dataset:
    """An empty dataset of ``sop_class`` with its file meta (Explicit VR Little Endian) and a new SOP
    Instance UID, ready to be filled and saved."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = UID(sop_class), generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    sop_class: str = SecondaryCaptureImageStorage,
    **attributes: Any,
) -> Path:
    """A DICOM file (preamble, file meta, Explicit VR Little Endian) holding ``pixels``: (rows,
    columns[, samples]) or, with ``NumberOfFrames`` among ``attributes``, (frames, rows, ...)."""
    ds = file_dataset(sop_class)
    if "NumberOfFrames" in attributes:
        ds.NumberOfFrames = attributes.pop("NumberOfFrames")
    ds.set_pixel_data(pixels, photometric, bits_stored or pixels.dtype.itemsize * 8)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def read_one(path: Path, **options: Any) -> Frame:
    frames = READER.read(path, ReadOptions(**options))
    assert len(frames) == 1
    return frames[0]


def reason_of(path: Path, **options: Any) -> str:
    with pytest.raises(UnreadableFile) as caught:
        read_file(path, ReadOptions(**options))
    assert caught.value.reason
    return caught.value.reason


def sample(name: str) -> Path:
    """A test file from pydicom's wheel, by name (never downloaded)."""
    matches = [Path(p) for p in get_testdata_files() if Path(p).name == name]
    assert matches, f"{name} is not among pydicom's test files"
    return matches[0]


# --- display pixels ------------------------------------------------------------------------------

HU = np.array([[-1000, -600, 0], [40, 400, 1000]], dtype=np.int16)


def ct_file(tmp_path: Path, **attributes: Any) -> Path:
    """A CT of known Hounsfield units: stored = HU + 1024, intercept -1024."""
    stored = (HU + 1024).astype(np.uint16)
    attributes = {"Modality": "CT", "RescaleSlope": 1, "RescaleIntercept": -1024, **attributes}
    return write_dicom(tmp_path / "ct.dcm", stored, bits_stored=12, sop_class=CTImageStorage, **attributes)


def test_ct_lung_window_by_hand(tmp_path: Path) -> None:
    """Lung window (-600 / 1500, DICOM LINEAR): black from -1350 HU, white from 149 HU."""
    pixels = read_one(ct_file(tmp_path), window="lung").pixels
    assert pixels.dtype == np.float32 and pixels.shape == (2, 3)
    expected = np.clip((HU.astype(np.float64) + 1350) / 1499, 0, 1)
    np.testing.assert_allclose(pixels, expected, atol=1e-6)
    assert abs(pixels[0, 1] - 0.5) < 1e-3  # -600 HU is mid-grey
    np.testing.assert_array_equal(read_one(ct_file(tmp_path), window=(-600, 1500)).pixels, pixels)


def test_ct_uses_its_own_window_then_the_default(tmp_path: Path) -> None:
    own = read_one(ct_file(tmp_path, WindowCenter=[40, 400], WindowWidth=[400, 2000])).pixels
    np.testing.assert_allclose(own, np.clip((HU + 160) / 399, 0, 1), atol=1e-6)  # the first pair: 40 / 400
    default = read_one(ct_file(tmp_path)).pixels  # no window in the file: 100 / 2500 HU
    np.testing.assert_allclose(default, np.clip((HU - (100 - 0.5 - 1249.5)) / 2499, 0, 1), atol=1e-6)


def test_file_window_equals_pydicom_pipeline_and_monochrome1_is_inverted() -> None:
    """A real MONOCHROME1 CR with its own window, ``robust`` VOI (no stretch after the window): ours is
    1 - pydicom's modality LUT + VOI, scaled. (The default ``google`` VOI: tests/test_fidelity.py.)"""
    path = sample("6154")
    ds = dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1" and "WindowCenter" in ds
    assert (ds.RescaleSlope, ds.RescaleIntercept, ds.PixelRepresentation) == (0.684, 200, 0)
    voi = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    # pydicom's output range: the rescaled range of the unsigned stored values
    y_min, y_max = 200.0, (2**ds.BitsStored - 1) * 0.684 + 200
    np.testing.assert_allclose(read_one(path, voi="robust").pixels, 1.0 - (voi - y_min) / (y_max - y_min), atol=1e-5)


def test_monochrome1_is_the_inverse_of_monochrome2(tmp_path: Path) -> None:
    stored = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)
    common: dict[str, Any] = {"Modality": "CR", "WindowCenter": 2048, "WindowWidth": 4096}
    one = read_one(write_dicom(tmp_path / "m1.dcm", stored, "MONOCHROME1", 12, **common)).pixels
    two = read_one(write_dicom(tmp_path / "m2.dcm", stored, "MONOCHROME2", 12, **common)).pixels
    np.testing.assert_allclose(one, 1.0 - two, atol=1e-6)
    assert one[0, 0] == 1.0 and two[0, 0] == 0.0  # the lowest stored value is white in MONOCHROME1


def test_voi_lut_sequence_equals_pydicom(tmp_path: Path) -> None:
    """Within the table, ours equals pydicom's ``apply_voi``; beyond it, the last entry (pydicom's
    uint8 index wraps: 256 would give entry 0)."""
    stored = np.arange(300, dtype=np.uint16).reshape(15, 20)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.LUTData = np.array([255 * (i / 255) ** 0.5 for i in range(256)], "<u2").tobytes()
    path = write_dicom(tmp_path / "lut.dcm", stored, bits_stored=9, Modality="MR", VOILUTSequence=[item])
    ds = dcmread(path)
    pixels = read_one(path).pixels.reshape(-1)
    np.testing.assert_allclose(pixels[:256], apply_voi_lut(ds.pixel_array, ds).reshape(-1)[:256] / 255.0)
    assert (pixels[256:] == 1.0).all()


def test_voi_lut_longer_than_its_output_range(tmp_path: Path) -> None:
    """4096 entries of 8 bits (entry i = i // 16): by hand, since pydicom's ``apply_voi`` indexes such a
    table through uint8 and wraps around (entry 256 gives 0, not 16)."""
    stored = np.array([[0, 255, 256, 300, 4095, 4095]], dtype=np.uint16)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 8]
    item.LUTData = (np.arange(4096) // 16).astype("<u2").tobytes()
    path = write_dicom(tmp_path / "lut.dcm", stored, bits_stored=12, Modality="CR", VOILUTSequence=[item])
    np.testing.assert_allclose(read_one(path).pixels, [[0, 15 / 255, 16 / 255, 18 / 255, 1, 1]], atol=1e-6)


def test_other_modalities_stretch_their_own_range(tmp_path: Path) -> None:
    stored = np.arange(100 * 100, dtype=np.uint16).reshape(100, 100)
    path = write_dicom(tmp_path / "mr.dcm", stored, bits_stored=14, Modality="MR")
    pixels = read_one(path, voi="robust").pixels
    low, high = np.percentile(stored, [0.5, 99.5])
    np.testing.assert_allclose(pixels, np.clip((stored - low) / (high - low), 0, 1), atol=1e-5)
    minmax = read_one(path).pixels  # the default (google) VOI: min-max
    np.testing.assert_allclose(minmax, stored / stored.max(), atol=1e-6)


def test_palette_color_equals_pydicom_lut() -> None:
    path = sample("examples_palette.dcm")
    ds = dcmread(path)
    rgb = apply_color_lut(ds.pixel_array, ds)
    pixels = read_one(path).pixels
    assert pixels.shape == (*ds.pixel_array.shape, 3)
    np.testing.assert_allclose(pixels, rgb / 65535.0, atol=1e-6)


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb_dcmtk_+eb+cy+np.dcm",  # JPEG baseline, YBR_FULL_422
        "SC_rgb_dcmtk_+eb+cy+s4.dcm",  # JPEG baseline, YBR_FULL
        "SC_ybr_full_422_uncompressed.dcm",
        "SC_rgb_jls_lossy_line.dcm",
        "SC_rgb_gdcm_KY.dcm",  # JPEG 2000
    ],
)
def test_colour_is_converted_to_rgb(name: str) -> None:
    """Each encoding of the same colour test card matches the lossless RGB one (lossy: small error)."""
    reference = read_one(sample("SC_rgb_rle.dcm")).pixels
    pixels = read_one(sample(name)).pixels
    assert pixels.shape == reference.shape == (100, 100, 3)
    assert np.abs(pixels - reference).mean() < 0.015
    np.testing.assert_allclose(reference[5, 5], [1.0, 0.0, 0.0])  # the red corner stays red


# --- transfer syntaxes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("MR_small_implicit.dcm", "ImplicitVRLittleEndian"),
        ("MR_small_bigendian.dcm", "ExplicitVRBigEndian"),
        ("MR_small_RLE.dcm", "RLELossless"),
        ("MR_small_jp2klossless.dcm", "JPEG2000Lossless"),
        ("MR_small_jpeg_ls_lossless.dcm", "JPEGLSLossless"),
    ],
)
def test_lossless_syntaxes_give_identical_pixels(name: str, syntax: str) -> None:
    reference = read_one(sample("MR_small.dcm"))
    frame = read_one(sample(name))
    assert frame.metadata["transfer_syntax"] == syntax
    np.testing.assert_array_equal(frame.pixels, reference.pixels)


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("SC_rgb_jpeg_dcmtk.dcm", "JPEGBaseline8Bit"),
        ("JPGExtended.dcm", "JPEGExtended12Bit"),
        ("SC_rgb_jpeg_gdcm.dcm", "JPEGLosslessSV1"),
        ("JPEGLSNearLossless_16.dcm", "JPEGLSNearLossless"),
        ("JPEG2000.dcm", "JPEG2000"),
        ("image_dfl.dcm", "DeflatedExplicitVRLittleEndian"),
        ("ExplVR_BigEnd.dcm", "ExplicitVRBigEndian"),
        ("SC_rgb_jpeg.dcm", "JPEGBaseline8Bit"),  # pixel data element written in implicit VR
    ],
)
def test_compressed_syntaxes_read(name: str, syntax: str) -> None:
    frame = read_one(sample(name))
    assert frame.metadata["transfer_syntax"] == syntax
    assert np.ptp(frame.pixels) > 0.2  # an image, not a blank


def test_htj2k_syntax_goes_through_openjpeg(tmp_path: Path) -> None:
    """No HTJ2K encoder is installed, so the codestream is a Part 1 (lossless) one, which HTJ2K decoders
    also accept: this proves the HTJ2K transfer syntax reaches OpenJPEG, not the HT block decoder."""
    stored = (np.arange(64 * 64) % 4096).astype(np.uint16).reshape(64, 64)
    path = write_dicom(tmp_path / "ht.dcm", stored, bits_stored=12, Modality="OT")
    ds = dcmread(path)
    ds.compress(JPEG2000Lossless)
    ds.file_meta.TransferSyntaxUID = HTJ2KLossless
    ds.save_as(path, enforce_file_format=True)
    frame = read_one(path)
    assert frame.metadata["transfer_syntax"] == "HTJ2KLossless"
    np.testing.assert_array_equal(pixel_array(path), stored)


# --- frames --------------------------------------------------------------------------------------


def five_frames(tmp_path: Path) -> tuple[Path, np.ndarray]:
    stack = np.stack([np.full((4, 6), 100 * i, np.uint16) + np.arange(6, dtype=np.uint16) for i in range(5)])
    return write_dicom(tmp_path / "mf.dcm", stack, bits_stored=12, NumberOfFrames=5, Modality="XA"), stack


def test_middle_frame_by_default_and_all_frames_on_request(tmp_path: Path) -> None:
    path, stack = five_frames(tmp_path)
    middle = read_one(path)
    assert middle.frame_number == middle.metadata["frame_number"] == 3
    every = READER.read(path, ReadOptions(frames="all"))
    assert [f.frame_number for f in every] == [1, 2, 3, 4, 5]
    assert [f.metadata["frame_number"] for f in every] == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(every[2].pixels, middle.pixels)
    single = read_one(write_dicom(tmp_path / "one.dcm", stack[0], bits_stored=12))
    assert single.frame_number == single.metadata["frame_number"] == 0


def test_an_icon_image_is_not_taken_for_the_image(tmp_path: Path) -> None:
    icon = Dataset()
    icon.Rows = icon.Columns = 2
    icon.SamplesPerPixel, icon.PhotometricInterpretation = 1, "MONOCHROME2"
    icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
    icon.PixelData = b"\x00\x01\x02\x03"
    stored = np.arange(64, dtype=np.uint16).reshape(8, 8)
    path = write_dicom(tmp_path / "icon.dcm", stored, bits_stored=12, Modality="MR", IconImageSequence=[icon])
    assert read_one(path).pixels.shape == (8, 8)


def test_only_the_needed_frame_is_decoded(tmp_path: Path) -> None:
    """Five RLE frames, the first one corrupt: the middle frame still reads; all frames give the four good
    ones and name the damaged one (issue 29)."""
    path, _ = five_frames(tmp_path)
    ds = dcmread(path)
    ds.compress(RLELossless)
    frames = [bytes(f) for f in generate_frames(ds.PixelData, number_of_frames=5)]
    ds.PixelData = encapsulate([b"\x05" + b"\xff" * 63, *frames[1:]])
    ds.save_as(path, enforce_file_format=True)
    assert read_one(path).frame_number == 3
    frames = read_file(path, ReadOptions(frames="all"))
    assert [frame.frame_number for frame in frames] == [2, 3, 4, 5]
    assert len(frames.damaged) == 1 and frames.damaged[0].startswith("frame 1: cannot decode pixel data")


def test_enhanced_multiframe_uses_per_frame_windows(tmp_path: Path) -> None:
    stack = np.full((2, 3, 3), 1100, np.uint16)  # 76 HU everywhere

    def frame_group(center: float) -> Dataset:
        group, voi = Dataset(), Dataset()
        voi.WindowCenter, voi.WindowWidth = center, 101
        group.FrameVOILUTSequence = [voi]
        return group

    shared, rescale = Dataset(), Dataset()
    rescale.RescaleSlope, rescale.RescaleIntercept, rescale.RescaleType = 1, -1024, "HU"
    shared.PixelValueTransformationSequence = [rescale]
    path = write_dicom(
        tmp_path / "enh.dcm",
        stack,
        bits_stored=12,
        NumberOfFrames=2,
        Modality="CT",
        SharedFunctionalGroupsSequence=[shared],
        PerFrameFunctionalGroupsSequence=[frame_group(26.5), frame_group(126.5)],
    )
    first, second = (f.pixels[0, 0] for f in READER.read(path, ReadOptions(frames="all")))
    assert first == pytest.approx(1.0) and second == pytest.approx(0.0)  # 76 HU: above / below


# --- metadata ------------------------------------------------------------------------------------

FULL = {
    "StudyInstanceUID": "1.2.3.4",
    "SeriesInstanceUID": "1.2.3.4.5",
    "Modality": "DX",
    "BodyPartExamined": "CHEST",
    "ViewPosition": "PA",
    "StudyDate": "20240131",
    "SeriesDescription": "  PA chest\x00  ",
    "Manufacturer": "ACME " * 40,
    "PatientSex": "F",
    "PatientAge": "045Y",
    "BurnedInAnnotation": "NO",
    **IDENTITY,
}


def full_file(tmp_path: Path, name: str = "full.dcm") -> Path:
    stored = np.arange(24, dtype=np.uint16).reshape(4, 6)
    with warnings.catch_warnings():  # the over-long Manufacturer is on purpose
        warnings.simplefilter("ignore", UserWarning)
        return write_dicom(tmp_path / name, stored, bits_stored=12, WindowCenter=12, WindowWidth=24, **FULL)


def test_metadata_columns_and_cleaning(tmp_path: Path) -> None:
    path = full_file(tmp_path)
    frame = read_one(path)
    meta = frame.metadata
    assert set(meta) <= {*METADATA_COLUMNS, "accession_key"}
    assert meta == {
        "file_format": "dicom",
        "width": 6,
        "height": 4,
        "frame_number": 0,
        "study_instance_uid": "1.2.3.4",
        "series_instance_uid": "1.2.3.4.5",
        "sop_instance_uid": dcmread(path).SOPInstanceUID,
        "modality": "DX",
        "body_part": "CHEST",
        "view_position": "PA",
        "study_date": dt.date(2024, 1, 31),
        "series_description": "PA chest",
        "manufacturer": ("ACME " * 40).strip()[:128],
        "photometric_interpretation": "MONOCHROME2",
        "transfer_syntax": "ExplicitVRLittleEndian",
        "patient_sex": "F",
        "patient_age": 45.0,
        "patient_key": None,
        "accession_key": None,
        "burned_in_annotation": False,
        "voi": "window 12/24 LINEAR (file) + minmax",  # a DX: Google's stretch after the window
    }


def test_identity_never_leaks_without_the_opt_in(tmp_path: Path) -> None:
    secret = b"k" * 32
    frame = read_one(full_file(tmp_path), patient_key_secret=secret)
    text = json.dumps(frame.metadata, default=str)
    fragments = ("Doe", "Jane", "PID-0042", "1979", "OTHER-77", "Main Street", "General", "House", "ACC-991")
    assert not [value for value in fragments if value in text]
    expected_key = hmac.new(secret, b"PID-0042", hashlib.sha256).hexdigest()[:32]
    assert frame.metadata["patient_key"] == expected_key


def test_identity_kept_on_request(tmp_path: Path) -> None:
    meta = read_one(full_file(tmp_path), keep_identity=True).metadata
    assert set(meta) - set(METADATA_COLUMNS) == {"identity", "accession_key"}
    assert json.loads(meta["identity"]) == IDENTITY


def test_pydicom_warnings_quoting_identity_stay_quiet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """pydicom warns and logs ``Invalid value for VR DA: '19xx0101'`` when it converts a malformed
    birth date; with the identity kept, the reader converts it, and nothing may reach warnings or logs."""
    path = full_file(tmp_path)
    ds = dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.PatientBirthDate = "19xx0101"
        ds.save_as(path, enforce_file_format=True)
    caplog.clear()  # writing the file warned and logged too
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("DEBUG", logger="pydicom"):
        warnings.simplefilter("always")
        meta = read_one(path, keep_identity=True).metadata
    assert json.loads(meta["identity"])["PatientBirthDate"] == "19xx0101"
    assert not [str(w.message) for w in caught] and not caplog.records


def test_reasons_carry_no_identity(tmp_path: Path) -> None:
    path = full_file(tmp_path)
    path.write_bytes(path.read_bytes()[:-10])  # truncated pixel data
    reason = reason_of(path)
    assert reason == "truncated file: 38 of 48 bytes of pixel data"
    assert not any(value in reason for value in IDENTITY.values())


def test_patient_key() -> None:
    assert patient_key(" PID-1 ", b"s") == patient_key("PID-1", b"s") != patient_key("PID-1", b"t")
    assert len(patient_key("PID-1", b"s") or "") == 32
    assert patient_key("PID-1", None) is None and patient_key(None, b"s") is None
    assert patient_key("", b"s") is None


@pytest.mark.parametrize(
    ("value", "years"),
    [
        ("045Y", 45.0),
        ("006M", 0.5),
        ("010W", 70 / 365.25),
        ("003D", 3 / 365.25),
        ("45", None),
        ("abcY", None),
        ("", None),
        (None, None),
        ("1000Y", None),
    ],
)
def test_patient_age(value: str | None, years: float | None) -> None:
    assert parse_age(value) == (pytest.approx(years) if years is not None else None)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("20240131", True), ("2024.01.31", True), ("20241332", False), ("2024", False), ("", False)],
)
def test_study_date(value: str, ok: bool) -> None:
    parsed = parse_date(value)
    assert (parsed is not None) == ok
    if ok:
        assert (parsed.year, parsed.month, parsed.day) == (2024, 1, 31)  # type: ignore[union-attr]


def test_string_caps_match_the_image_columns() -> None:
    lengths = {column.name: getattr(column.type, "length", 0) for column in Image.__table__.columns}
    for column, (_, length) in STRING_COLUMNS.items():
        assert lengths[column] == length, column
    assert lengths["transfer_syntax"] >= 64 and lengths["patient_key"] >= 32


# --- bad input -----------------------------------------------------------------------------------


def test_empty_and_gzip_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    assert reason_of(empty) == "empty file (0 bytes)"
    with pytest.raises(UnreadableFile, match="empty file"):
        READER.read(empty, ReadOptions())
    packed = tmp_path / "mr.dcm.gz"
    packed.write_bytes(gzip.compress(sample("MR_small.dcm").read_bytes()))
    assert reason_of(packed) == "gzip-compressed file; decompress it first"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("reportsi.dcm", "a structured report, not an image (read as its study's report)"),
        ("rtplan.dcm", "no pixel data (RT Plan Storage)"),
        ("waveform_ecg.dcm", "no pixel data (12-lead ECG Waveform Storage)"),
        ("DICOMDIR", "no pixel data (Media Storage Directory Storage)"),
        ("badVR.dcm", "invalid Number of Frames"),
    ],
)
def test_objects_without_images(name: str, reason: str) -> None:
    assert reason_of(sample(name)) == reason


def test_truncated_files(tmp_path: Path) -> None:
    data = sample("CT_small.dcm").read_bytes()
    (tmp_path / "head.dcm").write_bytes(data[:1000])
    assert reason_of(tmp_path / "head.dcm") == "no pixel data (CT Image Storage; the file may be truncated)"
    (tmp_path / "pixels.dcm").write_bytes(data[:-500])
    assert reason_of(tmp_path / "pixels.dcm").startswith("truncated file: ")
    (tmp_path / "noise.dcm").write_bytes(os.urandom(4000))
    assert reason_of(tmp_path / "noise.dcm")


def test_unsupported_transfer_syntax_is_named(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "video.dcm", np.zeros((4, 4), np.uint8))
    ds = dcmread(path)
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds.save_as(path, enforce_file_format=True)
    assert (
        reason_of(path)
        == "unsupported transfer syntax: MPEG2 Main Profile / Main Level (1.2.840.10008.1.2.4.100)"
    )


def test_float_pixel_data_is_rejected(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "f.dcm", np.zeros((2, 2), np.uint8))
    ds = dcmread(path)
    del ds.PixelData
    ds.BitsAllocated = 32
    ds.FloatPixelData = np.zeros((2, 2), np.float32).tobytes()
    ds.save_as(path, enforce_file_format=True)
    assert reason_of(path) == "float pixel data (FloatPixelData) is not supported"


def test_gigantic_headers_are_rejected_before_decoding(tmp_path: Path) -> None:
    """The pixel data is 16 bytes: decoding would fail differently. The size check comes first."""
    path = write_dicom(tmp_path / "huge.dcm", np.zeros((2, 4), np.uint16), bits_stored=12)
    ds = dcmread(path)
    ds.Rows = ds.Columns = 60000
    ds.save_as(path, enforce_file_format=True)
    assert reason_of(path).startswith("image too large: 60000 x 60000 x 1 samples x 1 frame(s)")
    ds.Rows = ds.Columns = 1000
    ds.NumberOfFrames = 300
    ds.save_as(path, enforce_file_format=True)
    assert reason_of(path, frames="all").startswith("image too large")  # 300 M values to decode
    assert reason_of(path).startswith("truncated pixel data: 16 bytes")  # the middle frame alone is allowed
    assert reason_of(path, max_pixels=999_999).startswith("image too large")


def test_codestream_larger_than_header_is_rejected(tmp_path: Path) -> None:
    """A JPEG 2000 frame whose SIZ marker claims far more rows than the header: OpenJPEG would try to
    allocate for it (a mutated 3.5 kB file made it ask for 23 GB)."""
    ds = dcmread(sample("693_J2KI.dcm"))
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    assert codestream_size(bytes(frame)) == (512, 512)
    y_size = frame.find(b"\xff\x4f\xff\x51") + 12  # SIZ: marker, Lsiz, Rsiz, Xsiz, then Ysiz
    frame[y_size : y_size + 4] = (8454656).to_bytes(4, "big")
    ds.PixelData = encapsulate([bytes(frame)])
    ds.save_as(tmp_path / "bomb.dcm")
    assert reason_of(tmp_path / "bomb.dcm") == (
        "frame 1 declares 512 x 8454656 pixels in its codestream but the header says 512 x 512"
    )


def test_jp2_wrapper_that_would_hang_pydicom_is_rejected(tmp_path: Path) -> None:
    """GDCM wraps JPEG 2000 in JP2 boxes; a zero-length box makes pydicom 3.0's box walk loop forever.
    Read in a child process with a timeout, so that a regression fails instead of hanging the tests."""
    ds = dcmread(sample("GDCMJ2K_TextGBR.dcm"))
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    assert frame[12 + 4 : 12 + 8] == b"ftyp"
    frame[12:16] = bytes(4)
    ds.PixelData = encapsulate([bytes(frame)])
    ds.save_as(tmp_path / "jp2.dcm")
    reason = _worker_reason(tmp_path / "jp2.dcm")
    assert reason == "frame 1: malformed JP2 wrapper: a zero-length box before the codestream"


def test_jpeg_codestream_size() -> None:
    ds = dcmread(sample("SC_rgb_jpeg_dcmtk.dcm"))
    assert codestream_size(bytes(next(generate_frames(ds.PixelData, number_of_frames=1)))) == (100, 100)
    ds = dcmread(sample("MR_small_jpeg_ls_lossless.dcm"))
    assert codestream_size(bytes(next(generate_frames(ds.PixelData, number_of_frames=1)))) == (64, 64)
    assert codestream_size(b"not an image") is None


def test_unsupported_photometric_and_bad_window_option(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "p.dcm", np.zeros((2, 2), np.uint8))
    ds = dcmread(path)
    ds.PhotometricInterpretation = "HSV"
    ds.save_as(path, enforce_file_format=True)
    assert reason_of(path) == "unsupported photometric interpretation 'HSV'"
    with pytest.raises(InvalidQuery):
        READER.read(sample("CT_small.dcm"), ReadOptions(window="liver"))


def test_not_dicom_with_a_dicom_suffix(tmp_path: Path) -> None:
    path = tmp_path / "fake.dcm"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 300)
    assert reason_of(path).startswith("not a DICOM file")


# --- decoder failures and isolation --------------------------------------------------------------


def rle_panic_file(tmp_path: Path) -> Path:
    """rtdose_rle_1frame.dcm with four bytes changed and cut short: a mutation found by fuzzing that
    makes pylibjpeg-rle panic (pyo3 ``PanicException``, a ``BaseException``)."""
    ds = dcmread(sample("rtdose_rle_1frame.dcm"))
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    for offset, value in ((16, 213), (74, 195), (143, 58), (278, 41)):
        frame[offset] = value
    ds.PixelData = encapsulate([bytes(frame[:285])])
    ds.save_as(tmp_path / "panic.dcm")
    return tmp_path / "panic.dcm"


def test_a_decoder_panic_becomes_a_reason(tmp_path: Path) -> None:
    reason = reason_of(rle_panic_file(tmp_path))
    assert reason.startswith("cannot decode pixel data: PanicException")


def test_decode_guard() -> None:
    class Panic(BaseException):
        pass

    with pytest.raises(UnreadableFile, match=r"^step: Panic: boom$"), DecodeGuard("step"):
        raise Panic("boom")
    with pytest.raises(UnreadableFile, match=r"^step: out of memory$"), DecodeGuard("step"):
        raise MemoryError
    with pytest.raises(KeyboardInterrupt), DecodeGuard("step"):
        raise KeyboardInterrupt
    with pytest.raises(UnreadableFile, match=r"^mine$"), DecodeGuard("step"):
        raise UnreadableFile("mine")


def abort_reader(path: Path, options: ReadOptions) -> list[Frame]:
    os.abort()


def sleepy_reader(path: Path, options: ReadOptions) -> list[Frame]:
    time.sleep(60)
    return []


def greedy_reader(path: Path, options: ReadOptions) -> list[Frame]:
    hoard = bytearray(2 * 2**30)
    return [Frame(pixels=np.zeros((1, 1), np.float32), metadata={"size": len(hoard)})]


def guarded_greedy_reader(path: Path, options: ReadOptions) -> list[Frame]:
    """As a decoder's allocation inside the reader: the MemoryError arrives as UnreadableFile."""
    with DecodeGuard("cannot decode pixel data"):
        return greedy_reader(path, options)


def test_a_worker_read_returns_the_same_frames() -> None:
    path = sample("CT_small.dcm")
    frames = read_in_worker(path)
    np.testing.assert_array_equal(frames[0].pixels, read_one(path).pixels)
    assert frames[0].metadata == read_one(path).metadata


def test_a_worker_read_reports_reasons_crashes_timeouts_and_memory(tmp_path: Path) -> None:
    """Through the decoding workers an index run uses (``medsearch.indexer.workers``)."""
    reason = _worker_reason(rle_panic_file(tmp_path))
    assert reason.startswith("cannot decode pixel data: PanicException")
    assert _worker_reason(tmp_path, abort_reader) == CRASHED
    started = time.monotonic()
    assert _worker_reason(tmp_path, sleepy_reader, Limits(1.0, 1 << 30)) == "decoding took longer than 1 s"
    assert time.monotonic() - started < 30
    assert _worker_reason(tmp_path, greedy_reader, Limits(60, 1 << 30)) == (
        "decoding needed more than 1024 MB of memory")
    assert _worker_reason(tmp_path, guarded_greedy_reader, Limits(60, 1 << 30)) == (
        "cannot decode pixel data: out of memory")


def _worker_reason(path: Path, reader: Any = read_file, limits: Limits = TEST_LIMITS) -> str:
    with pytest.raises(UnreadableFile) as caught:
        read_in_worker(path, ReadOptions(), limits, reader)
    return caught.value.reason
