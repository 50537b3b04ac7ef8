"""The pure pixel steps, checked against pydicom's own functions and against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from medsearch.errors import InvalidQuery
from medsearch.indexer import pixels as px
from medsearch.indexer.voi import CT_DEFAULT_WINDOW
from medsearch.indexer.windows import (
    WINDOW_PRESETS,
    choose_voi,
    frame_sources,
    parse_window,
)
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_windowing

HU = arrays(np.int16, st.integers(1, 64), elements=st.integers(-2048, 3071))


def _ct_dataset(**attributes: object) -> Dataset:
    """A signed 12-bit CT pixel module with the usual rescale, plus ``attributes``."""
    ds = Dataset()
    ds.Modality = "CT"
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _pydicom_window_unit(stored: np.ndarray, ds: Dataset) -> np.ndarray:
    """pydicom's windowing of the modality values, brought from its output range to [0, 1]."""
    out = apply_windowing(apply_modality_lut(stored, ds), ds)
    y_min = -(2 ** (ds.BitsStored - 1)) * ds.RescaleSlope + ds.RescaleIntercept
    y_max = (2 ** (ds.BitsStored - 1) - 1) * ds.RescaleSlope + ds.RescaleIntercept
    return (out - y_min) / (y_max - y_min)


@given(HU, st.sampled_from([1, 2, 0.5]), st.sampled_from([-1024, 0, 100.5]))
def test_rescale_equals_pydicom_modality_lut(stored: np.ndarray, slope: float, intercept: float) -> None:
    ds = _ct_dataset(RescaleSlope=slope, RescaleIntercept=intercept)
    ours = px.rescale(stored, slope, intercept)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, apply_modality_lut(stored, ds), rtol=1e-6, atol=1e-3)


def test_rescale_makes_a_float32_copy_and_leaves_the_input_alone() -> None:
    stored = np.array([[0, 1024, 2048]], dtype=np.uint16)
    values = px.rescale(stored, 1.0, -1024.0)
    np.testing.assert_array_equal(values, [[-1024, 0, 1024]])
    np.testing.assert_array_equal(stored, [[0, 1024, 2048]])


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
@settings(max_examples=60)
@given(
    HU,
    st.floats(-1000, 2000),
    st.floats(2, 4000),
    st.sampled_from(["LINEAR", "LINEAR_EXACT", "SIGMOID"]),
)
def test_window_equals_pydicom_apply_windowing(
    stored: np.ndarray, center: float, width: float, function: str
) -> None:
    ds = _ct_dataset(WindowCenter=center, WindowWidth=width, VOILUTFunction=function)
    ours = px.apply_window(px.rescale(stored, 1, -1024), center, width, function)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, _pydicom_window_unit(stored, ds), atol=2e-4)


def test_lung_window_by_hand() -> None:
    """Lung window -600 / 1500 (DICOM LINEAR): -600 HU is mid-grey, the window's ends are black and
    white, and values beyond them are clipped."""
    hu = np.array([-2000, -1350, -600, 149, 1000], dtype=np.float32)
    out = px.apply_window(hu, *WINDOW_PRESETS["lung"])
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5 + 0.5 / 1499, 1.0, 1.0], atol=1e-6)


def test_window_narrower_than_one_thresholds() -> None:
    out = px.apply_window(np.array([9.0, 9.5, 10.0], dtype=np.float32), 10.0, 1.0)
    np.testing.assert_array_equal(out, [0.0, 0.0, 1.0])


def test_window_rejects_bad_width_and_function() -> None:
    with pytest.raises(ValueError):
        px.apply_window(np.zeros(2, np.float32), 0, 0)
    with pytest.raises(ValueError):
        px.apply_window(np.zeros(2, np.float32), 0, 10, "CUBIC")


@given(
    arrays(np.float32, 32, elements=st.floats(-5000, 5000, width=32)),
    st.floats(-500, 500),
    st.floats(1, 3000),
)
def test_window_is_monotonic_and_within_unit(values: np.ndarray, center: float, width: float) -> None:
    order = np.argsort(values, kind="stable")
    out = px.apply_window(values.copy(), center, width)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.all(np.diff(out[order]) >= 0)


def test_lut_by_hand() -> None:
    """Entries from ``first``; values below and above the table take its first and last entries."""
    table = np.array([10, 20, 30, 110], dtype=np.uint16)
    values = np.array([-5, 100, 101.4, 101.6, 103, 500], dtype=np.float32)
    np.testing.assert_allclose(px.apply_lut(values, table, 100), [0, 0, 0.1, 0.2, 1, 1], atol=1e-6)


def test_stretch_maps_robust_range_and_keeps_sparse_masks_visible() -> None:
    ramp = np.arange(1000, dtype=np.float32)
    out = px.stretch(ramp.copy())
    low, high = np.percentile(ramp, [0.5, 99.5])
    np.testing.assert_allclose(out[500], (500 - low) / (high - low), rtol=1e-5)
    assert out[0] == 0.0 and out[-1] == 1.0
    mask = np.zeros((100, 100), dtype=np.float32)
    mask[0, :3] = 1.0  # 0.03 % foreground: both percentiles are 0
    out = px.stretch(mask)
    assert out.sum() == 3.0 and out.max() == 1.0


def test_stretch_of_a_constant_image_is_black() -> None:
    assert not px.stretch(np.full((4, 4), 7.0, np.float32)).any()


@given(arrays(np.float32, (3, 5), elements=st.floats(0, 1, width=32)))
def test_invert_is_one_minus_and_its_own_inverse(values: np.ndarray) -> None:
    inverted = px.invert(values.copy())
    np.testing.assert_allclose(inverted, 1.0 - values, atol=1e-7)
    np.testing.assert_allclose(px.invert(inverted), values, atol=1e-6)


def test_scale_by_bits_and_by_dtype() -> None:
    np.testing.assert_allclose(
        px.scale_by_bits(np.array([0, 2048, 4095, 65535], np.uint16), 12), [0, 2048 / 4095, 1, 1]
    )
    sixteen = px.scale_by_dtype(np.array([0, 1000, 65535], dtype=np.uint16))
    assert sixteen.dtype == np.float32
    np.testing.assert_allclose(sixteen, [0, 1000 / 65535, 1], rtol=1e-6)
    np.testing.assert_allclose(px.scale_by_dtype(np.array([0, 51, 255], np.uint8)), [0, 0.2, 1], rtol=1e-6)
    np.testing.assert_allclose(px.scale_by_dtype(np.array([-32768, 32767], np.int16)), [0, 1])
    np.testing.assert_array_equal(px.scale_by_dtype(np.array([True, False])), [1, 0])


def test_channels_and_padding() -> None:
    rgba = np.zeros((2, 3, 4), np.float32)
    assert px.to_three_channels(rgba).shape == (2, 3, 3)
    assert px.to_three_channels(np.zeros((2, 3, 2))).shape == (2, 3)
    with pytest.raises(ValueError):
        px.to_three_channels(np.zeros((2, 3, 5)))
    padded = px.pad_to_square(np.ones((2, 4), np.float32))
    np.testing.assert_array_equal(padded, [[0] * 4, [1] * 4, [1] * 4, [0] * 4])


# --- window choice -------------------------------------------------------------------------------


def test_parse_window_presets_pairs_and_mistakes() -> None:
    assert parse_window(None) is None
    assert parse_window("lung") == (-600.0, 1500.0)
    assert parse_window("Soft_Tissue") == (40.0, 400.0)
    assert parse_window((40, 80)) == (40.0, 80.0)
    for bad in ("liver", (40, 0), (40, float("nan")), (1, 2, 3), "40/80"):
        with pytest.raises(InvalidQuery):
            parse_window(bad)  # type: ignore[arg-type]


def test_choose_voi_precedence() -> None:
    ds = _ct_dataset()
    assert choose_voi(ds, 0, None).kind == "window"
    assert (choose_voi(ds, 0, None).center, choose_voi(ds, 0, None).width) == CT_DEFAULT_WINDOW
    ds.WindowCenter, ds.WindowWidth = [40, 400], [80, 2000]  # several: the first pair
    assert (choose_voi(ds, 0, None).center, choose_voi(ds, 0, None).width) == (40, 80)
    assert choose_voi(ds, 0, (-600.0, 1500.0)).center == -600.0  # asked for beats the file
    mr = _ct_dataset(Modality="MR")
    assert choose_voi(mr, 0, None).kind == "minmax"  # google mode: min-max without a window
    assert choose_voi(mr, 0, None, "robust").kind == "percentile"
    lut = Dataset()
    lut.LUTDescriptor, lut.LUTData = [4, 0, 8], [0, 50, 100, 255]
    mr.VOILUTSequence = [lut]
    assert choose_voi(mr, 0, None).kind == "lut"
    mr.WindowCenter, mr.WindowWidth = 10, 0  # unusable window: the LUT applies
    assert choose_voi(mr, 0, None).kind == "lut"


def test_per_frame_functional_groups_come_first() -> None:
    def voi(center: float) -> Dataset:
        item = Dataset()
        item.FrameVOILUTSequence = [Dataset()]
        item.FrameVOILUTSequence[0].WindowCenter = center
        item.FrameVOILUTSequence[0].WindowWidth = 100
        return item

    ds = _ct_dataset(WindowCenter=1, WindowWidth=10)
    ds.PerFrameFunctionalGroupsSequence = [voi(10), voi(20)]
    ds.SharedFunctionalGroupsSequence = [voi(99)]
    assert [choose_voi(ds, index, None).center for index in (0, 1)] == [10, 20]
    assert len(frame_sources(ds, 5, "FrameVOILUTSequence")) == 2  # no 6th frame item: shared, then top
