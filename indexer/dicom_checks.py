"""Header checks of a DICOM file added after a wider corpus broke the reader (issue 29): uncompressed pixel
data shorter than the image it describes, and Siemens mosaics (refused: the slices are not split)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medsearch.errors import UnreadableFile

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
    from pydicom.uid import UID


def check_native_length(ds: Dataset, syntax: UID, length: int | None, frames: int) -> None:
    """Reject uncompressed pixel data (``length`` bytes; None: unknown) shorter than Rows x Columns x
    Samples x ``frames`` needs, which pydicom would refuse with numpy's "cannot reshape array": one line
    saying how many bytes there are and how many are needed. Raises UnreadableFile."""
    if syntax.is_encapsulated or length is None:
        return
    samples = 2 if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422" else int(ds.SamplesPerPixel)
    values = int(ds.Rows) * int(ds.Columns) * samples * frames
    bits = int(ds.BitsAllocated)
    needed = (values + 7) // 8 if bits == 1 else values * ((bits + 7) // 8)
    if length < needed:
        raise UnreadableFile(f"truncated pixel data: {length} bytes, but {ds.Rows} x {ds.Columns} x {samples} "
                             f"samples x {frames} frame(s) at {bits} bits need {needed}")


MOSAIC_REASON = ("Siemens mosaic (ImageType MOSAIC): its slices are tiled in one image and are not split; "
                 "convert the series to one slice per file first (for example with dcm2niix)")


def check_mosaic(ds: Dataset) -> None:
    """Refuse a Siemens mosaic, whose one frame tiles a whole volume's slices (the model would see a grid)."""
    image_type = ds.get("ImageType")
    values = [image_type] if isinstance(image_type, str) else list(image_type or [])
    if any(str(value).strip().upper() == "MOSAIC" for value in values):
        raise UnreadableFile(MOSAIC_REASON)
