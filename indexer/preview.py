"""What the model saw: the exact (3, S, S) input of an image, de-normalised and written as a PNG (the
padded square, after the VOI, at the model's size). Greyscale inputs (three equal channels) are written
as 16-bit grey, so the PNG equals the de-normalised tensor to 1/65535; colour as 8-bit RGB.

For the web page's detail panel: ``preview_png(store, preprocessor, image_id)`` returns the PNG bytes, with
burned-in text masked or the picture withheld (``medsearch.indexer.censor``) unless the store keeps identity.
Only the frame shown is decoded."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
from medsearch.errors import NotFound
from medsearch.indexer.censor import shown
from medsearch.indexer.frames import Frame, ReadOptions
from medsearch.indexer.preprocess import Preprocessor
from medsearch.indexer.read_back import image_source
from medsearch.indexer.readers import read_file
from medsearch.storage.store import Store


def model_input(path: Path, options: ReadOptions, preprocessor: Preprocessor, frame_number: int | None = None
                ) -> np.ndarray:
    """The (3, S, S) float32 tensor the model is given for ``path`` (its representative frame, or the
    frame ``frame_number``, the only one decoded). Raises UnreadableFile, NotFound (no such frame)."""
    return preprocessor(_frame(path, options, frame_number).pixels)


def _frame(path: Path, options: ReadOptions, frame_number: int | None) -> Frame:
    if frame_number is not None and frame_number > 0:
        options = replace(options, frame=frame_number)
    frames = read_file(path, options)
    if frame_number is not None and frame_number > 0 and frames[0].frame_number != frame_number:
        raise NotFound(f"{path} has no frame {frame_number}")
    return frames[0]


def shown_png(path: Path, options: ReadOptions, preprocessor: Preprocessor, frame_number: int | None = None) -> bytes:
    """PNG bytes of the model input of ``path`` as it may be shown: burned-in text masked or the picture
    withheld (``medsearch.indexer.censor``; ``options.keep_identity`` shows it whole). Raises UnreadableFile,
    NotFound."""
    frame = _frame(path, options, frame_number)
    unit = denormalise(preprocessor(frame.pixels), preprocessor)
    picture, _words = shown(unit, bool(frame.metadata.get("burned_in_annotation")), options.keep_identity)
    return unit_png(picture)


def denormalise(tensor: np.ndarray, preprocessor: Preprocessor) -> np.ndarray:
    """(3, S, S) model input -> (S, S, 3) float32 in [0, 1]: ``x * std + mean`` per channel."""
    std = np.asarray(preprocessor.std, dtype=np.float32)[:, None, None]
    mean = np.asarray(preprocessor.mean, dtype=np.float32)[:, None, None]
    return np.clip(np.moveaxis(tensor * std + mean, 0, -1), 0.0, 1.0)


def to_png(tensor: np.ndarray, preprocessor: Preprocessor) -> bytes:
    """PNG bytes of a model input: 16-bit grey when its channels are equal, else 8-bit RGB."""
    return unit_png(denormalise(tensor, preprocessor))


def unit_png(unit: np.ndarray) -> bytes:
    """PNG bytes of (S, S, 3) float32 [0, 1]: 16-bit grey when its channels are equal, else 8-bit RGB."""
    from PIL import Image

    buffer = io.BytesIO()
    if np.array_equal(unit[:, :, 0], unit[:, :, 1]) and np.array_equal(unit[:, :, 0], unit[:, :, 2]):
        grey = np.rint(unit[:, :, 0] * 65535).astype(np.uint16)
        Image.fromarray(grey).save(buffer, format="PNG")
    else:
        Image.fromarray(np.rint(unit * 255).astype(np.uint8), mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def preview_png(store: Store, preprocessor: Preprocessor, image_id: int) -> bytes:
    """PNG bytes of the model input of a stored image, read as the store read it, burned-in text masked
    (``shown_png``). Raises NotFound, UnreadableFile (the file changed or is gone)."""
    path, frame_number, options = image_source(store, image_id)
    return shown_png(Path(path), options, preprocessor, frame_number)
