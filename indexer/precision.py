"""The numeric precision the model runs in, chosen from what the hardware has, never blindly.

``auto``      float32 on the CPU; bfloat16 on a GPU that has it, else float16.
``fast``      the fastest path whose vectors stay within about 1e-3 cosine of float32: on the CPU,
              bfloat16 where the CPU has bfloat16 instructions (AMX or AVX-512 BF16), else int8; on a GPU,
              the same as ``auto``.
``float32``, ``bfloat16``, ``float16``   as named. bfloat16 on a CPU without bfloat16 instructions is
              refused: PyTorch emulates it there, tens of times slower than float32.
``int8``      dynamic int8 linear layers, CPU only (``medsearch.indexer.quantize``).

Measured on a random-weight model of MedSigLIP-448's full shape on a 2-core Xeon with AMX
(``benchmarks/bench_embed.py``): bfloat16 5.3x float32's images/s at a mean cosine of 0.99997 to float32's
vectors; int8 1.95x at 0.9997.
"""

from __future__ import annotations

from medsearch.errors import ModelUnavailable

PRECISIONS = ("auto", "fast", "float32", "bfloat16", "float16", "int8")


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bfloat16 matrix products natively (AMX tiles or AVX-512 BF16)."""
    import torch

    probes = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    return any(bool(probe()) for probe in probes if probe is not None)


def resolve_precision(device: str, precision: str) -> str:
    """The precision to load the model in on ``device`` (``cpu``, ``cuda``, ``cuda:N``): float32, bfloat16,
    float16 or int8. Raises ModelUnavailable, saying what to do, for an unknown name or a precision that
    this hardware cannot run well."""
    if precision not in PRECISIONS:
        raise ModelUnavailable(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    on_gpu = device.startswith("cuda")
    if on_gpu and precision in ("auto", "fast"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if precision == "auto":
        return "float32"
    if precision == "fast":
        return "bfloat16" if cpu_has_bf16() else "int8"
    if precision == "int8" and on_gpu:
        raise ModelUnavailable(
            f"--precision int8 runs on the CPU only (PyTorch's int8 kernels have no {device} version); "
            "use --device cpu, or --precision auto on a GPU."
        )
    if precision == "bfloat16" and not on_gpu and not cpu_has_bf16():
        raise ModelUnavailable(
            "--precision bfloat16 needs a CPU with bfloat16 instructions (AMX or AVX-512 BF16), which this one "
            "lacks: it would run many times slower than float32. Use --precision fast (int8 here) or float32."
        )
    return precision
