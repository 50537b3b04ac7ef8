"""Small pure pixel functions, applied in this order by the readers:
modality LUT -> window -> invert MONOCHROME1 -> scale to [0, 1] -> 3 channels -> pad to square.
Each says its dtype and shape in and out."""

from __future__ import annotations

import numpy as np


def scale_by_dtype(pixels: np.ndarray) -> np.ndarray:
    """Integer array (any shape) -> float32 in [0, 1], divided by the dtype's maximum (65535 for
    uint16, 255 for uint8); a float array is clipped to [0, 1]. Bool -> 0/1."""
    if pixels.dtype == np.bool_:
        return pixels.astype(np.float32)
    if np.issubdtype(pixels.dtype, np.integer):
        info = np.iinfo(pixels.dtype)
        if info.min < 0:
            shifted = pixels.astype(np.float32) - info.min
            return shifted / float(info.max - info.min)
        return pixels.astype(np.float32) / float(info.max)
    return np.clip(pixels.astype(np.float32), 0.0, 1.0)


def to_three_channels(pixels: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 2: grey + alpha), (H, W, 3) or (H, W, 4: RGBA) -> (H, W) or (H, W, 3);
    alpha is dropped. Greyscale stays 2-D: the preprocessor repeats it to 3 channels after resizing,
    which gives the same result for a third of the work."""
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
