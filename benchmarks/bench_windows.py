"""The multi-window CT experiment (issue 17, off by default, not in the indexer): does embedding each CT
slice under several window presets, as extra vectors tagged with their window, and scoring a slice by
its best window, find more than the one vector of the file's own window?

Synthetic CT series written as real DICOM (CT Image Storage, 16-bit, RescaleIntercept -1024, the file's
own window soft tissue 40/400 as scanners write it), 12 slices each, a finding on the 2 middle slices,
drawn with the shapes of tests/tiny_siglip.py in Hounsfield units so that each kind is plain only in
one window:
- ``subtle``: a +70 HU cross in 0-10 HU tissue (the brain window 40/80 shows tiny_siglip's "white cross";
  soft tissue shows a faint grey one);
- ``lung``: an air (-1024 HU) dot in -150..150 HU (the lung window -600/1500 shows "a black dot on white"; soft
  tissue a black dot on grey);
- blank series: 0-60 HU tissue only.
Every file is read by the indexer's own reader (``medsearch.indexer.readers.read_file`` with
``ReadOptions(window=...)``), preprocessed and embedded by the tiny trained SigLIP. For the caption of
each finding: precision@k over slices (k = its marked slices) and over series (k = its series, a series
scored by its best slice), for one vector per slice (the file's window, today's behaviour), one preset
alone, and the best of several windows per slice. Also the embedding cost per window set.

    PYTHONPATH=. python benchmarks/bench_windows.py [--model-dir DIR] [--series 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.model_loading import load_embedder
from medsearch.indexer.readers import read_file

from tests.tiny_siglip import CLASS_CAPTIONS, draw_class_image, train_tiny_siglip
from tests.volumes import uid

FINDINGS = {"subtle": "white_cross", "lung": "black_dot"}
"""Finding kind -> the tiny model's class whose caption queries it."""
WINDOWS = ("file", "lung", "brain", "mediastinum", "bone", "soft-tissue")
SETS = {"file (today)": ("file",), "lung alone": ("lung",), "brain alone": ("brain",),
        "file+lung+brain": ("file", "lung", "brain"), "all six": WINDOWS}
SLICES, MARKED = 12, 2


def hounsfield(kind: str | None, rng: np.random.Generator) -> np.ndarray:
    """A (64, 64) int16 slice in HU: tissue, with the finding of ``kind`` drawn in when given."""
    noise = rng.normal(0.0, 3.0, (64, 64))
    if kind == "lung":
        tissue = rng.uniform(-150, 150) + noise
    elif kind == "subtle":
        tissue = rng.uniform(0, 10) + noise
    else:
        tissue = rng.uniform(0, 60) + 2 * noise
    if kind is not None:
        drawn = np.asarray(draw_class_image(FINDINGS[kind], rng).convert("L").resize((64, 64)), dtype=np.float32)
        mask = drawn > 150 if kind == "subtle" else drawn < 100
        tissue = np.where(mask, (tissue + 70) if kind == "subtle" else -1024.0, tissue)
    return np.clip(np.round(tissue), -1024, 3071).astype(np.int16)


def write_ct(path: Path, hu: np.ndarray, series: str, study: str, number: int) -> None:
    """One CT slice as a DICOM file: stored = HU + 1024 (unsigned), the file's window soft tissue."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, UID(uid(series, number))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality, ds.InstanceNumber = study, series, "CT", number
    ds.PatientID, ds.StudyDate = "W1", "20240101"
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.WindowCenter, ds.WindowWidth = -1024, 1, 40, 400
    ds.PixelData = (hu.astype(np.int32) + 1024).astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_set(folder: Path, per_kind: int, blanks: int, seed: int = 0) -> list[tuple[Path, str | None, str]]:
    """(path, finding kind on this slice or None, its series uid) of every slice written."""
    rng = np.random.default_rng(seed)
    kinds: list[str | None] = [k for k in FINDINGS for _ in range(per_kind)] + [None] * blanks
    slices = []
    for number, kind in enumerate(kinds):
        series = uid("window-series", seed, number)
        for index in range(SLICES):
            marked = kind is not None and (SLICES - MARKED) // 2 <= index < (SLICES + MARKED) // 2
            path = folder / series / f"{index:03d}.dcm"
            write_ct(path, hounsfield(kind if marked else None, rng), series, uid("window-study", number), index + 1)
            slices.append((path, kind if marked else None, series))
    return slices


def embed(embedder: Any, paths: list[Path], window: str) -> tuple[np.ndarray, float]:
    """(n, dim) vectors of ``paths`` read under ``window`` ("file": the file's own), and the seconds."""
    options = ReadOptions() if window == "file" else ReadOptions(window=window)
    started = time.perf_counter()
    inputs = np.stack([embedder.preprocessor(read_file(path, options)[0].pixels) for path in paths])
    vectors = np.vstack([embedder.embed_images(inputs[i : i + 32]) for i in range(0, len(inputs), 32)])
    return vectors, time.perf_counter() - started


def precision(scores: np.ndarray, truth: list[bool], k: int) -> float:
    top = np.argsort(-scores, kind="stable")[:k]
    return float(np.mean([truth[i] for i in top]))


def measure(embedder: Any, slices: list[tuple[Path, str | None, str]]) -> dict[str, Any]:
    paths = [path for path, _kind, _series in slices]
    by_window, seconds = {}, {}
    for window in WINDOWS:
        by_window[window], seconds[window] = embed(embedder, paths, window)
    series = sorted({s for _p, _k, s in slices})
    members = np.array([series.index(s) for _p, _k, s in slices])
    figures: dict[str, Any] = {"seconds_per_window": seconds, "slices": len(slices), "series": len(series)}
    for kind, class_name in FINDINGS.items():
        query = embedder.embed_texts([CLASS_CAPTIONS[class_name][0]])[0]
        truth = [k == kind for _p, k, _s in slices]
        series_truth = [any(truth[i] for i in np.flatnonzero(members == n)) for n in range(len(series))]
        for name, windows in SETS.items():
            scores = np.max(np.stack([by_window[w] @ query for w in windows]), axis=0)
            best = np.array([scores[members == n].max() for n in range(len(series))])
            figures.setdefault(kind, {})[name] = {
                "slice_p@k": precision(scores, truth, sum(truth)),
                "series_p@k": precision(best, series_truth, sum(series_truth))}
    return figures


def mean_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of several sets, each number their mean."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: mean_of([run[key] for run in runs]) for key in first}
    return float(np.mean(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="reuse a tiny trained model (train_tiny_siglip)")
    parser.add_argument("--series", type=int, default=3, help="series per finding kind")
    parser.add_argument("--seeds", type=int, default=3, help="synthetic sets drawn; figures are their mean")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        model = args.model_dir or train_tiny_siglip(scratch / "tiny", seed=0)
        embedder = load_embedder(str(model), device="cpu")
        runs = [measure(embedder, write_set(scratch / f"ct{seed}", args.series, 4, seed)) for seed in range(args.seeds)]
    figures = mean_of(runs)
    print(f"{figures['slices']:.0f} slices in {figures['series']:.0f} series, mean of {args.seeds} sets; "
          "precision@k (slices / series):")
    print(f"{'windows':<18}" + "".join(f"{kind:>20}" for kind in FINDINGS))
    for name in SETS:
        cells = "".join(f"{figures[kind][name]['slice_p@k']:>12.2f} / {figures[kind][name]['series_p@k']:.2f}"
                        for kind in FINDINGS)
        print(f"{name:<18}{cells}")
    per = figures["seconds_per_window"]
    print("embedding seconds per window: " + ", ".join(f"{w} {s:.2f}" for w, s in per.items()))
    out = Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_windows.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
