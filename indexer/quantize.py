"""Opt-in int8 inference on the CPU: PyTorch dynamic quantization of the ``nn.Linear`` layers.

Weights of every linear layer (attention projections, MLPs, the text head) are stored as int8 with one
scale per tensor; activations are quantized per batch on the fly; embeddings, layer norms, the patch
convolution and the attention-pooling head's ``MultiheadAttention`` stay float32. On MedSigLIP-shaped
towers this measured 1.5-1.95x faster than float32 at a mean cosine of 0.9997 to the float32 vectors
(``benchmarks/bench_embed.py``). CPU only: PyTorch's quantized kernels (fbgemm / x86 / qnnpack) do not
run on CUDA. The vectors are stored under the same model id and revision as float32 ones (as bfloat16
vectors from a GPU are): they are close enough to share an index, not bit-identical.

``torch.ao.quantization.quantize_dynamic`` is deprecated in favour of torchao, which is not a dependency
here; its deprecation warnings are silenced for this one call.
"""

from __future__ import annotations

import warnings
from typing import Any


def quantize_int8(model: Any) -> Any:
    """Return ``model`` (a float32 ``torch.nn.Module`` on the CPU) with its ``nn.Linear`` layers replaced by
    dynamically quantized int8 ones; the module is changed in place and also returned. Inputs and outputs
    stay float32."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model.float().eval(), {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
