"""medsearch's model input against Google's MedSigLIP serving steps, step by step, on real DICOMs from
pydicom's data (and real CR pixel data rewritten as the cases pydicom does not ship). The reference is
``tests.indexer.google_steps``: numpy on pydicom's arrays, no ``indexer`` code."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.pixels import pad_to_square
from medsearch.indexer.preprocess import Preprocessor
from medsearch.indexer.readers import read_file
from pydicom import dcmread
from pydicom.data import get_testdata_files

from tests.indexer import google_steps as google

# Their window spans center +- width // 2, DICOM's LINEAR center - 0.5 +- (width - 1) / 2: at most
# about 1.5 / width of the range apart (0.004 for a width of 400).
WINDOW_CONVENTION = 0.005


def sample(name: str) -> Path:
    return next(Path(p) for p in get_testdata_files() if Path(p).name == name)


CASES = {  # name -> (pydicom file, variant or None, what it covers)
    "cr-window-monochrome1": ("6154", None),
    "cr-no-window": ("6247", "no-window"),
    "cr-monochrome2": ("6278", "monochrome2"),
    "cr-signed": ("6154", "signed"),
    "cr-8-bit": ("6154", "8-bit"),
    "dx": ("6247", "dx"),
    "ct-window": ("2392", None),
    "ct-no-window": ("CT_small.dcm", None),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    name, kind = CASES[request.param]
    path = sample(name)
    return google.variant(path, tmp_path / f"{kind}.dcm", kind) if kind else path


def _ours(path: Path, **options: object) -> np.ndarray:
    frames = read_file(path, ReadOptions(**options))  # type: ignore[arg-type]
    return frames[0].pixels


def test_the_cases_are_what_they_say(tmp_path: Path) -> None:
    """The variants really are signed / 8-bit / windowless, so the cases cover what they claim."""
    signed = dcmread(google.variant(sample("6154"), tmp_path / "s.dcm", "signed"))
    assert signed.PixelRepresentation == 1 and signed.pixel_array.min() < 0 and "WindowCenter" not in signed
    eight = dcmread(google.variant(sample("6154"), tmp_path / "8.dcm", "8-bit"))
    assert eight.pixel_array.dtype == np.uint8 and "WindowCenter" not in eight
    assert dcmread(sample("6154")).PhotometricInterpretation == "MONOCHROME1"
    assert "WindowCenter" not in dcmread(sample("CT_small.dcm")) and "WindowCenter" in dcmread(sample("2392"))


def test_voi_step_matches_google(case: Path) -> None:
    """Modality LUT -> window -> stretch -> MONOCHROME1: [0, 1] pixels equal theirs to within the window
    convention."""
    theirs = google.to_unit(google.google_grey(dcmread(case)))
    ours = _ours(case)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() <= WINDOW_CONVENTION
    ds = dcmread(case)
    if ds.Modality != "CT" and ds.BitsAllocated != 8:  # the min-max stretch spans the whole range
        np.testing.assert_allclose([ours.min(), ours.max()], [0.0, 1.0], atol=1e-6)


def test_pad_step_matches_google() -> None:
    """Their centred zero pad (extra row at the bottom) and ours are the same on odd and even margins."""
    for shape in ((3, 8), (8, 3), (4, 9), (5, 5)):
        grey = np.random.default_rng(0).random(shape, dtype=np.float32)
        three = np.repeat(grey[:, :, np.newaxis], 3, axis=2)
        np.testing.assert_array_equal(pad_to_square(three), google.pad_square(three))


def test_model_input_matches_google(case: Path) -> None:
    """The (3, 448, 448) input: r >= 0.995 and mean |difference| <= 0.02 (the issue's bounds)."""
    ours = Preprocessor(448)(_ours(case))
    theirs = google.google_model_input(dcmread(case))
    assert ours.shape == theirs.shape == (3, 448, 448)
    r, diff = google.agreement(ours, theirs)
    assert r >= 0.995 and diff <= 0.02, (r, diff)


def test_resize_step_matches_the_processor(case: Path) -> None:
    """Resize + normalise alone, on the same padded pixels: ours (float32 planes) against the Hugging
    Face processor (8-bit PIL planes) differ only by that quantisation."""
    from transformers import SiglipImageProcessor

    pixels = _ours(case)
    square = pad_to_square(np.repeat(pixels[:, :, np.newaxis], 3, axis=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        processor = SiglipImageProcessor(do_rescale=False, size={"height": 448, "width": 448})
    theirs = processor.preprocess([square], data_format="channels_first", input_data_format="channels_last",
                                  return_tensors="np")["pixel_values"][0]
    assert np.mean(np.abs(Preprocessor(448)(pixels) - theirs)) <= 2 * 2 / 255  # two 8-bit steps on [-1, 1]


def test_robust_mode_is_what_google_does_not_do() -> None:
    """The named alternative really differs for CR (the reason it is not the default) and not for CT."""
    cr, ct = sample("6154"), sample("2392")
    cr_theirs = google.google_model_input(dcmread(cr))
    assert google.agreement(Preprocessor(448)(_ours(cr, voi="robust")), cr_theirs)[1] > 0.1
    ct_theirs = google.google_model_input(dcmread(ct))
    assert google.agreement(Preprocessor(448)(_ours(ct, voi="robust")), ct_theirs)[1] <= 0.02


def test_the_voi_used_is_described() -> None:
    assert read_file(sample("6154"), ReadOptions())[0].metadata["voi"] == "window 1600/2800 LINEAR (file) + minmax"
    assert read_file(sample("6154"), ReadOptions(voi="robust"))[0].metadata["voi"] == "window 1600/2800 LINEAR (file)"
    ct = read_file(sample("CT_small.dcm"), ReadOptions(window="lung"))[0].metadata["voi"]
    assert ct == "window -600/1500 LINEAR (asked)"
    assert read_file(sample("CT_small.dcm"), ReadOptions())[0].metadata["voi"] == "window 100/2500 LINEAR (default)"
