"""Small pure pixel functions. The readers apply them in this order (pydicom documents the same order
for ``apply_modality_lut`` / ``apply_voi_lut``):

1. modality LUT / rescale: stored values -> modality units (Hounsfield units for CT)   ``rescale``
2. VOI: a window (``apply_window``), a VOI LUT (``apply_lut``), or a robust stretch (``stretch``)
3. MONOCHROME1 inverted so that bone is bright                                         ``invert``
4. [0, 1] (colour and plain raster images: ``scale_by_bits`` / ``scale_by_dtype``)
5. channels: greyscale stays (H, W), colour is (H, W, 3)                               ``to_three_channels``

then, in the preprocessor, ``pad_to_square`` and the model's processor.

Arithmetic is float32. Functions that take a float32 array and say "in place" overwrite and return it,
so a frame costs one float32 copy of the decoded array.
"""

from __future__ import annotations

import numpy as np

_STRETCH_SAMPLE = 262_144  # pixels sampled for the percentiles: enough for 0.5 % tails, ~20 ms


def rescale(pixels: np.ndarray, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """Modality rescale: ``pixels * slope + intercept`` as a new float32 array, same shape.

    ``pixels``: any numeric dtype (the decoded stored values).
    Raises ValueError when the result does not fit float32 (an absurd slope or intercept)."""
    values = pixels.astype(np.float32, order="C")
    with np.errstate(over="ignore", invalid="ignore"):
        if slope != 1.0:
            values *= np.float32(slope)
        if intercept != 0.0:
            values += np.float32(intercept)
    if not np.isfinite(values).all():
        raise ValueError(f"rescale slope {slope:g} / intercept {intercept:g} overflow the pixel values")
    return values


def apply_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """DICOM VOI windowing (PS3.3 C.11.2.1.2) of float32 ``values``, in place, to [0, 1].

    ``function``: ``LINEAR`` (the default: the window spans ``center - 0.5 +- (width - 1) / 2``;
    a width <= 1 thresholds at ``center - 0.5``), ``LINEAR_EXACT`` (``center +- width / 2``) or
    ``SIGMOID``. Raises ValueError for another function or a non-positive width."""
    if width <= 0:
        raise ValueError(f"window width must be positive, got {width}")
    if function == "SIGMOID":
        values -= np.float32(center)
        values *= np.float32(-4.0 / width)
        with np.errstate(over="ignore"):
            np.exp(values, out=values)
        values += np.float32(1.0)
        return np.reciprocal(values, out=values)
    if function == "LINEAR" and width <= 1:
        return np.greater(values, np.float32(center - 0.5), out=values, casting="unsafe")
    if function == "LINEAR":
        low, span = center - 0.5 - (width - 1) / 2, width - 1
    elif function == "LINEAR_EXACT":
        low, span = center - width / 2, width
    else:
        raise ValueError(f"unsupported VOI LUT function {function!r}")
    return scale_to_unit(values, low, low + span)


def apply_lut(values: np.ndarray, table: np.ndarray, first: int) -> np.ndarray:
    """A lookup table (VOI LUT) applied to float32 ``values``: entry ``round(v) - first``, clamped to
    the table, then scaled from the table's own range to [0, 1]. ``values`` is used as scratch space;
    returns a new float32 array of the same shape. ``table``: 1-D, any numeric dtype."""
    np.rint(values, out=values)
    values -= np.float32(first)
    np.clip(values, 0, len(table) - 1, out=values)
    mapped = table.astype(np.float32, copy=False)[values.astype(np.intp)]
    return scale_to_unit(mapped, float(table.min()), float(table.max()))


def scale_to_unit(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Float32 ``values`` mapped linearly from [low, high] to [0, 1] and clipped, in place.
    ``high <= low`` gives all zeros (a constant image)."""
    if not high > low:
        values.fill(0.0)
        return values
    values -= np.float32(low)
    values *= np.float32(1.0 / (high - low))
    return np.clip(values, 0.0, 1.0, out=values)


def stretch(values: np.ndarray, low_percentile: float = 0.5, high_percentile: float = 99.5) -> np.ndarray:
    """Default VOI when there is no window: float32 ``values`` from their robust range (the given
    percentiles, estimated on about 2**18 evenly spaced pixels) to [0, 1], in place. Falls back
    to the full min-max range when the percentiles coincide (sparse images such as masks)."""
    flat = values.reshape(-1)
    sample = flat[:: max(1, flat.size // _STRETCH_SAMPLE)]
    low, high = (float(v) for v in np.percentile(sample, [low_percentile, high_percentile]))
    if not high > low:
        low, high = float(flat.min()), float(flat.max())
    return scale_to_unit(values, low, high)


def invert(values: np.ndarray) -> np.ndarray:
    """MONOCHROME1 -> MONOCHROME2 on float32 [0, 1] ``values``: ``1 - values``, in place."""
    np.subtract(np.float32(1.0), values, out=values)
    return values


def scale_by_bits(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned integer samples of ``bits`` significant bits (any shape) -> new float32 array in [0, 1],
    divided by ``2**bits - 1`` and clipped (stray high bits cannot exceed 1)."""
    values = pixels.astype(np.float32, order="C")
    values *= np.float32(1.0 / (2 ** int(bits) - 1))
    return np.clip(values, 0.0, 1.0, out=values)


def scale_by_dtype(pixels: np.ndarray) -> np.ndarray:
    """Integer array (any shape) -> float32 in [0, 1], divided by the dtype's maximum (65535 for
    uint16, 255 for uint8); a signed dtype is shifted by its minimum first. A float array is clipped to
    [0, 1]. Bool -> 0/1."""
    if pixels.dtype == np.bool_:
        return pixels.astype(np.float32, order="C")
    if np.issubdtype(pixels.dtype, np.integer):
        info = np.iinfo(pixels.dtype)
        if info.min < 0:
            shifted = pixels.astype(np.float32, order="C") - np.float32(info.min)
            return scale_to_unit(shifted, 0.0, float(info.max) - float(info.min))
        return scale_by_bits(pixels, info.bits)
    return np.clip(pixels.astype(np.float32, order="C"), 0.0, 1.0)


def to_three_channels(pixels: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 2: grey + alpha), (H, W, 3) or (H, W, 4: RGBA) -> (H, W) or (H, W, 3);
    alpha is dropped. Greyscale stays 2-D: the preprocessor repeats it to 3 channels after resizing,
    which gives the same result for a third of the work. Raises ValueError for other channel counts."""
    if pixels.ndim == 2:
        return pixels
    channels = pixels.shape[2]
    if channels in (1, 2):
        return pixels[:, :, 0]
    if channels in (3, 4):
        return pixels[:, :, :3]
    raise ValueError(f"unsupported channel count {channels}")


def pad_to_square(pixels: np.ndarray) -> np.ndarray:
    """(H, W[, C]) -> (S, S[, C]) with S = max(H, W): zero-padded, the image centred. Same dtype."""
    height, width = pixels.shape[:2]
    side = max(height, width)
    if height == width:
        return pixels
    top = (side - height) // 2
    left = (side - width) // 2
    out = np.zeros((side, side, *pixels.shape[2:]), dtype=pixels.dtype)
    out[top : top + height, left : left + width] = pixels
    return out
