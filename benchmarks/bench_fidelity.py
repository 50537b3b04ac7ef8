"""Fidelity of medsearch's model input to the one Google's MedSigLIP serving code computes, on every CR,
DX and CT DICOM in pydicom's data (found by Modality), plus real CR pixel data rewritten as the cases
pydicom does not ship (no window, signed, 8-bit, DX, MONOCHROME2; ``tests.indexer.google_steps.variant``).

    PYTHONPATH=. python benchmarks/bench_fidelity.py            # both VOI modes
    PYTHONPATH=. python benchmarks/bench_fidelity.py --voi google

For each file: Pearson r and mean |difference| of the two (3, 448, 448) inputs on the [-1, 1] scale; the
closing line counts the files with r >= 0.995 and mean |difference| <= 0.02 per VOI mode (a file whose
two inputs are both constant, r undefined, counts when the difference is within bounds). The reference is
``tests.indexer.google_steps`` (numpy on pydicom's arrays), which shares no code with ``indexer``.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

R_MIN, DIFF_MAX = 0.995, 0.02
MODALITIES = ("CR", "DX", "CT")
VARIANTS = ("no-window", "signed", "8-bit", "dx", "monochrome2")


def pydicom_images() -> list[tuple[str, Path]]:
    """(modality, path) of pydicom's test files with pixel data and a CR, DX or CT Modality."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_files

    found = []
    for name in sorted(get_testdata_files()):
        try:
            ds = dcmread(name, stop_before_pixels=True, force=True)
        except Exception:
            continue
        modality = str(ds.get("Modality", "")).upper()
        if modality in MODALITIES and "Rows" in ds and "PhotometricInterpretation" in ds:
            found.append((modality, Path(name)))
    return found


def measure(path: Path, modes: list[str]) -> dict[str, tuple[float, float] | str]:
    """Per VOI mode: (r, mean |diff|) against Google's steps, or the reason it could not be compared."""
    from medsearch.errors import UnreadableFile
    from medsearch.indexer.frames import ReadOptions
    from medsearch.indexer.preprocess import Preprocessor
    from medsearch.indexer.readers import read_file
    from pydicom import dcmread

    from tests.indexer.google_steps import agreement, google_model_input

    try:
        theirs = google_model_input(dcmread(path))
    except Exception as exc:
        return dict.fromkeys(modes, f"reference failed: {exc}"[:80])
    out: dict[str, tuple[float, float] | str] = {}
    for mode in modes:
        try:
            pixels = read_file(path, ReadOptions(voi=mode))[0].pixels  # type: ignore[arg-type]
        except UnreadableFile as exc:
            out[mode] = f"medsearch: {exc.reason}"[:80]
            continue
        out[mode] = agreement(Preprocessor(448)(pixels), theirs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voi", choices=("google", "robust"), nargs="*", default=["google", "robust"])
    modes = parser.parse_args().voi
    warnings.filterwarnings("ignore")
    from tests.indexer.google_steps import variant

    rows = [(modality, path.name, path) for modality, path in pydicom_images()]
    scratch = Path(tempfile.mkdtemp(prefix="fidelity-"))
    cr = next((path for modality, path in pydicom_images() if modality == "CR"), None)
    if cr is not None:
        rows += [(f"{kind} of CR", cr.name, variant(cr, scratch / f"{kind}.dcm", kind)) for kind in VARIANTS]
    print(f"{'file':<28} {'kind':<18}" + "".join(f" {mode + ' r':>10} {mode + ' |d|':>12}" for mode in modes))
    passed = dict.fromkeys(modes, 0)
    compared = dict.fromkeys(modes, 0)
    for kind, name, path in rows:
        result = measure(path, modes)
        cells = ""
        for mode in modes:
            value = result[mode]
            if isinstance(value, str):
                cells += f" {value:>23}"
                continue
            r, diff = value
            compared[mode] += 1
            if r != r:  # both inputs constant (the whole image outside its window): r is undefined
                passed[mode] += diff <= DIFF_MAX
                cells += f" {'constant':>10} {diff:>12.4f}"
                continue
            passed[mode] += r >= R_MIN and diff <= DIFF_MAX
            cells += f" {r:>10.4f} {diff:>12.4f}"
        print(f"{name:<28} {kind:<18}{cells}")
    for mode in modes:
        print(f"voi={mode}: {passed[mode]} of {compared[mode]} files within r >= {R_MIN} and "
              f"mean |diff| <= {DIFF_MAX}")


if __name__ == "__main__":
    main()
