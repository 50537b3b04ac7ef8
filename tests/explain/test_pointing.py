"""The pointing game on the tiny trained model: the default method's peak falls inside the shape's box
for at least 80 % of images, and its positive mass inside the box beats the box's share of the area.
A shape in a corner of a non-square canvas lights that corner of the padded square."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from medsearch.explain import DEFAULT_METHOD, METHODS
from medsearch.explain.service import explain_frame

from tests.explain.pointing import draw, play, pointing_set


@pytest.fixture(scope="module")
def scores(explain_embedder: Any) -> dict[str, Any]:
    cases = pointing_set(per_class=10, seed=1)
    figures = {method: play(explain_embedder, cases, method) for method in METHODS}
    print({method: score.as_dict() for method, score in figures.items()})
    return figures


def test_default_method_wins_the_pointing_game(scores: dict[str, Any]) -> None:
    best = scores[DEFAULT_METHOD]
    assert best.pointing >= 0.8, best
    assert best.mass_in_box > best.area_share, best
    assert all(best.pointing >= other.pointing for other in scores.values()), scores


@pytest.mark.parametrize("corner", ["top-left", "top-right", "bottom-left", "bottom-right"])
def test_a_shape_in_a_corner_lights_that_corner_of_the_padded_square(explain_embedder: Any, corner: str) -> None:
    width, height, side = 80, 56, 24  # padded to 80 x 80: 12 rows of zeros above and below
    x0 = 0 if corner.endswith("left") else width - side
    y0 = 0 if corner.startswith("top") else height - side
    image = draw("red_circle", (width, height), (x0, y0, x0 + side, y0 + side), grey=20)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    query = explain_embedder.embed_texts(["a red circle"])[0]
    heatmap = explain_frame(explain_embedder, pixels, query, DEFAULT_METHOD, explain_embedder.embed_texts).heatmap
    row, col = np.unravel_index(int(np.argmax(heatmap.grid)), heatmap.grid.shape)
    cell = heatmap.side / heatmap.grid.shape[0]  # 10 px
    box_rows = range(int((y0 + 12) // cell), int(np.ceil((y0 + 12 + side) / cell)))
    box_cols = range(int(x0 // cell), int(np.ceil((x0 + side) / cell)))
    assert row in box_rows and col in box_cols, (corner, row, col, heatmap.grid.round(3))
