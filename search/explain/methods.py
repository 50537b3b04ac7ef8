"""Three text-conditioned patch maps of a SigLIP image, each about one vision-tower forward pass.

- ``values``: the exact additive split of the head's attention output over patches and heads,
  ``<a_{h,i} W_out[:, h] v_{h,i}, t>``; summed over heads and patches plus ``<b_out, t>`` it equals
  ``<o, t>`` (first-order only for the final embedding: the head's MLP is non-linear).
- ``maskclip``: each patch's value routed alone through the head's output projection, layernorm and MLP
  (no attention), then its cosine to ``t`` (MaskCLIP, Zhou et al. 2022).
- ``legrad``: the positive part of the gradient of the image-text cosine with respect to the head's
  attention, the head applied to each of the last blocks' tokens, heads averaged, layers summed, with the
  gradient of a neutral prompt's cosine subtracted from the target (LeGrad, arXiv 2404.03214, SigLIP
  variant). Backward passes go through the head only, not through the encoder blocks.

Every map is a (g, g) float32 grid over the padded square the model saw, row 0 at the top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from medsearch.explain.head import attention_of, finish, patch_tokens, pool, vision_tower

LEGRAD_LAYERS = 4
"""How many of the last encoder blocks LeGrad reads (all of them when the tower has fewer)."""


def _grid(scores: torch.Tensor) -> np.ndarray:
    """(N,) patch scores -> (g, g) float32, g = sqrt(N)."""
    side = math.isqrt(scores.shape[-1])
    return scores.detach().float().cpu().numpy().reshape(side, side).astype(np.float32)


@dataclass
class Maps:
    """A method's output for one image: ``grid`` (g, g) float32; ``embedding`` (D,) float32, the image's
    pooled embedding from the same pass (not normalised); ``heads`` (H, g, g) and ``bias`` (``<b_out, t>``)
    for ``values`` only, with ``heads.sum(0) == grid`` and ``grid.sum() + bias == <o, t>``."""

    grid: np.ndarray
    embedding: np.ndarray
    heads: np.ndarray | None = None
    bias: float | None = None


def _vector(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy().reshape(-1).astype(np.float32)


def value_maps(model: Any, pixels: torch.Tensor, text: torch.Tensor) -> Maps:
    """The exact per-patch, per-head split of ``<o, t>`` for one image (1, 3, S, S) and one unit text
    vector (D,), in the model's dtype and device."""
    head = vision_tower(model).head
    with torch.no_grad():
        pooled = pool(head, patch_tokens(model, pixels)[-1])
        share = pooled.attention[0].T[:, :, None] * pooled.values[0]  # (N, H, D)
        per_head = (share @ text.to(share.dtype)).T  # (H, N)
        bias = float((head.attention.out_proj.bias @ text.to(share.dtype)).float())
    heads = np.stack([_grid(row) for row in per_head])
    return Maps(heads.sum(axis=0), _vector(pooled.embedding), heads, bias)


def maskclip_map(model: Any, pixels: torch.Tensor, text: torch.Tensor) -> Maps:
    """(g, g) cosine of each patch's value, alone through out-projection + layernorm + MLP, to ``text``."""
    head = vision_tower(model).head
    with torch.no_grad():
        pooled = pool(head, patch_tokens(model, pixels)[-1])
        output = pooled.values[0].sum(dim=1) + head.attention.out_proj.bias  # (N, D)
        dense = output + head.mlp(head.layernorm(output))
        scores = F.normalize(dense.float(), dim=-1) @ text.float()
    return Maps(_grid(scores), _vector(pooled.embedding))


def legrad_map(model: Any, pixels: torch.Tensor, text: torch.Tensor, neutral: torch.Tensor | None) -> Maps:
    """(g, g) LeGrad map: sum over the last ``LEGRAD_LAYERS`` blocks of relu(d cos(e_l, t - n) / d A_l)
    averaged over heads, where e_l is the head applied to block l's tokens with attention A_l, and ``n``
    the neutral prompt's unit vector (or none). Raises InvalidQuery for an int8 model (no gradients)."""
    from medsearch.errors import InvalidQuery

    head = vision_tower(model).head
    if not isinstance(head.mlp.fc1.weight, torch.Tensor) or not head.mlp.fc1.weight.is_floating_point():
        raise InvalidQuery("--method legrad needs float weights; use values or maskclip with int8")
    target = text if neutral is None else text - neutral
    with torch.no_grad():
        layers = patch_tokens(model, pixels, LEGRAD_LAYERS)
    total = torch.zeros(layers[0].shape[1], dtype=torch.float32, device=layers[0].device)
    with torch.enable_grad():
        for tokens in layers:
            attention = attention_of(head, tokens).detach().requires_grad_(True)
            embedding = finish(head, tokens, attention).embedding
            score = (F.normalize(embedding.float(), dim=-1) @ target.float()).sum()
            (grad,) = torch.autograd.grad(score, attention)
            total += grad[0].float().clamp(min=0).mean(dim=0)
    return Maps(_grid(total), _vector(embedding))
