"""Recall and false-positive rate of the burned-in text detector (``medsearch.indexer.text_detect``), and its
cost per image, on text rendered onto real and drawn images.

Bases: CT and MR images bundled with pydicom (decoded by medsearch's reader) and drawn radiograph-like
pictures (a body, ribs, noise), each enlarged or reduced to 512 pixels on its longer side. pydicom's
ultrasound files that carry real burned-in labels are checked too.
Text: names, dates and IDs at four heights (2 %, 3 %, 4.5 % and 7 % of the picture: 10-36 px at 512),
five positions and three contrasts (white, light grey, mid grey). Clean: the bases without text, and more
drawn radiographs. Each picture is checked twice: by the detector on the picture itself, and on the
256-pixel thumbnail medsearch stores. The last table checks the thumbnails ``censor`` makes: how many
still show text to the detector.

    python benchmarks/burned_in_text.py [--drawn 5]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from medsearch.indexer import text_detect
from medsearch.indexer.censor import censor
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.readers import read_file
from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
TEXTS = {"name": "BERNARD^SOPHIE", "date": "1975-03-02 14:22", "id": "MRN 0047-2291"}
HEIGHTS = (0.02, 0.03, 0.045, 0.07)
CONTRASTS = {"white": 1.0, "light grey": 0.75, "mid grey": 0.5}
POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "centre")
SIDE = 512


def fitted(pixels: np.ndarray) -> np.ndarray:
    """(H, W[, 3]) float32 [0, 1] -> greyscale, resized to SIDE on its longer side."""
    grey = pixels.mean(axis=2) if pixels.ndim == 3 else pixels
    picture = Image.fromarray(np.round(grey * 255).astype(np.uint8))
    scale = SIDE / max(picture.size)
    picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.Resampling.BICUBIC)
    return np.asarray(picture, dtype=np.float32) / 255.0


CLEAN_FILES = ("693_J2KI.dcm", "CT_small.dcm", "J2K_pixelrep_mismatch.dcm", "JPEG2000.dcm", "JPGExtended.dcm",
               "MR_small.dcm", "examples_overlay.dcm")
"""pydicom's bundled images without text in their pixels (CT, MR, a few codecs)."""
TEXT_FILES = ("examples_jpeg2k.dcm", "examples_palette.dcm", "examples_rgb_color.dcm", "examples_ybr_color.dcm",
              "GDCMJ2K_TextGBR.dcm")
"""pydicom's bundled images that carry real burned-in text (ultrasound labels, a test pattern of words)."""


def pydicom_pictures(names: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
    from pydicom.data import get_testdata_file

    return [(name, fitted(read_file(Path(str(get_testdata_file(name))), ReadOptions())[0].pixels)) for name in names]


def drawn_radiograph(seed: int) -> np.ndarray:
    """A chest-radiograph-like picture: a bright body ellipse, dark lungs, rib arcs, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    body = np.exp(-(((x - 0.5) / 0.42) ** 2 + ((y - 0.55) / 0.5) ** 2) ** 2) * 0.8
    for side in (0.33, 0.67):
        body -= 0.35 * np.exp(-(((x - side) / 0.13) ** 2 + ((y - 0.5) / 0.25) ** 2) ** 2)
    for rib in np.linspace(0.3, 0.75, int(rng.integers(6, 10))):
        body += 0.12 * np.exp(-(((y - rib - 0.08 * np.cos((x - 0.5) * 6)) / 0.012) ** 2))
    body += rng.normal(0, 0.03, body.shape)
    return np.clip(body, 0, 1).astype(np.float32)


def with_text(base: np.ndarray, text: str, height: float, level: float, position: str) -> np.ndarray:
    picture = Image.fromarray(np.round(base * 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.truetype(FONT, max(6, round(height * picture.height)))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    width, tall = right - left, bottom - top
    margin = 8
    x = margin if "left" in position else picture.width - width - margin
    y = margin if "top" in position else picture.height - tall - margin
    if position == "centre":
        x, y = (picture.width - width) // 2, (picture.height - tall) // 2
    draw.text((x - left, y - top), text, fill=round(level * 255), font=font)
    return np.asarray(picture, dtype=np.float32) / 255.0


def thumbnail_of(pixels: np.ndarray) -> np.ndarray:
    picture = Image.fromarray(np.round(pixels * 255).astype(np.uint8))
    picture.thumbnail((256, 256), Image.Resampling.LANCZOS)
    return np.asarray(picture, dtype=np.float32) / 255.0


def detects(pixels: np.ndarray, timings: list[float]) -> bool:
    started = time.process_time()  # CPU seconds: the machine is shared, wall time says more about the others
    found = text_detect.text_words(text_detect.find_text(pixels))
    timings.append(time.process_time() - started)
    return bool(found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drawn", type=int, default=5, help="drawn radiographs carrying text")
    args = parser.parse_args()
    if not text_detect.available():
        raise SystemExit("the detector is not available (pip install tesserocr; apt-get install tesseract-ocr)")
    real = pydicom_pictures(CLEAN_FILES)
    bases = real[:5] + [(f"drawn-{seed}", drawn_radiograph(seed)) for seed in range(args.drawn)]
    clean = real + [(f"drawn-{seed}", drawn_radiograph(seed)) for seed in range(100, 100 + 4 * args.drawn)]
    hits: dict[tuple[str, str], list[bool]] = defaultdict(list)
    timings: dict[str, list[float]] = {"picture": [], "thumbnail": []}
    residual = []
    positions = itertools.cycle(POSITIONS)
    for (_name, base), (kind, text), height, (contrast, level) in itertools.product(
            bases, TEXTS.items(), HEIGHTS, CONTRASTS.items()):
        pixels = with_text(base, text, height, level, next(positions))
        found = {where: detects(picture, timings[where])
                 for where, picture in (("picture", pixels), ("thumbnail", thumbnail_of(pixels)))}
        found["either"] = found["picture"] or found["thumbnail"]
        for where, key in itertools.product(found, (f"height {height:.1%}", f"contrast {contrast}",
                                                   f"text {kind}", "all")):
            hits[(where, key)].append(found[where])
        masked = censor(pixels, flagged=False, keep_identity=False)
        if masked.pixels is not None:
            residual.append(bool(text_detect.text_words(text_detect.find_text(thumbnail_of(masked.pixels)))))
    for _name, pixels in pydicom_pictures(TEXT_FILES):
        found = {where: detects(picture, timings[where])
                 for where, picture in (("picture", pixels), ("thumbnail", thumbnail_of(pixels)))}
        found["either"] = found["picture"] or found["thumbnail"]
        for where in found:
            hits[(where, "pydicom's own text images")].append(found[where])
    false = {where: [detects(pixels if where == "picture" else thumbnail_of(pixels), [])
                     for _name, pixels in clean] for where in ("picture", "thumbnail")}
    false["either"] = [a or b for a, b in zip(false["picture"], false["thumbnail"], strict=True)]
    report(hits, false, timings, residual, len(bases), len(clean))


def report(hits: dict[tuple[str, str], list[bool]], false: dict[str, list[bool]], timings: dict[str, list[float]],
           residual: list[bool], bases: int, clean: int) -> None:
    keys = sorted({key for _where, key in hits}, key=lambda key: (key != "all", key))
    wheres = ("picture", "thumbnail", "either")
    print(f"{bases} bases, {len(hits[('picture', 'all')])} pictures with text, {clean} clean pictures")
    print("| text | found in the 512 px picture | in the 256 px thumbnail | in either (what `censor` uses) |")
    print("|---|---|---|---|")
    for key in keys:
        cells = [f"{np.mean(hits[(where, key)]):.0%} ({sum(hits[(where, key)])}/{len(hits[(where, key)])})"
                 for where in wheres]
        print(f"| {key} | {' | '.join(cells)} |")
    cells = [f"{np.mean(false[where]):.0%} ({sum(false[where])}/{len(false[where])})" for where in wheres]
    print(f"| false positives, clean pictures | {' | '.join(cells)} |")
    cpu = [f"{statistics.median(timings[where]) * 1000:.0f} ms" for where in ("picture", "thumbnail")]
    print(f"| CPU per picture (median) | {cpu[0]} | {cpu[1]} | up to both |")
    print(f"censored thumbnails in which the detector still reads text: {sum(residual)}/{len(residual)}")


if __name__ == "__main__":
    main()
