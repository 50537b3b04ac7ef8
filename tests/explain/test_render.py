"""The explain PNG at any image size: the whole caption (wrapped, never cut), a colour bar with its label
and its range at the ends, the square drawn at the image's side within the limits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image


def heatmap(side: int) -> object:
    from medsearch.explain.explain import Heatmap

    grid = np.outer(np.linspace(0, 1, 14), np.linspace(0.2, 1, 14)).astype(np.float32)
    return Heatmap("legrad", grid, side, (0, 0), (side, side), 0.1234)


def ink_bands(region: np.ndarray) -> int:
    """Runs of rows that hold dark pixels (lines of text) in an RGB region."""
    inked = (region.min(axis=2) < 100).any(axis=1)
    return int(np.sum(inked[1:] & ~inked[:-1]) + inked[0])


@pytest.mark.parametrize(("shape", "side"), [((24, 32), 448), ((600, 400), 600), ((3000, 2000), 1024)])
def test_the_whole_caption_and_a_labelled_bar_at_any_size(shape: tuple[int, int], side: int) -> None:
    from medsearch.explain import NOTE
    from medsearch.explain.render import caption_of, font_for, overlay_png, wrap

    pixels = np.random.default_rng(0).random(shape, dtype=np.float32)
    shown = heatmap(max(shape))
    drawn = np.asarray(Image.open(io.BytesIO(overlay_png(pixels, shown))).convert("RGB"))
    lines = wrap(caption_of(shown), font_for(side), drawn.shape[1] - 8)
    assert " ".join(lines) == caption_of(shown) and caption_of(shown).endswith(NOTE)
    assert len(lines) >= 2  # at every size the note needs more than one line: none of it is cut
    assert drawn.shape[0] > side and ink_bands(drawn[side:]) == len(lines)
    bar = drawn[:side, side:]
    assert bar.shape[1] > 40
    middle = bar[side // 2]
    assert (np.abs(middle[:, 0].astype(int) - middle[:, 2].astype(int)) > 60).any()  # the ramp's colours
    top, bottom = bar[side // 8], bar[side - side // 8]
    ramp_column = int(np.argmax(np.abs(middle[:, 0].astype(int) - middle[:, 2].astype(int))))
    assert top[ramp_column].sum() > bottom[ramp_column].sum() + 200  # highest (pale) at the top
    label_columns = bar[side // 4: 3 * side // 4, ramp_column + 8:]
    assert (label_columns.min(axis=2) < 100).sum() > 50  # the written label beside the ramp
    assert ink_bands(bar[: side // 12]) >= 1 and ink_bands(bar[-side // 12:]) >= 1  # the range's two ends
