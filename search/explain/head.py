"""The attention-pooling head of a SigLIP vision tower, redone by hand so its attention is visible.

Hugging Face's ``SiglipMultiheadAttentionPoolingHead`` computes ``q = probe W_q + b_q``, ``k_i = x_i W_k + b_k``,
``v_i = x_i W_v + b_v`` (``x``: the post-layernorm patch tokens), the attention ``a_{h,i} = softmax_i(q_h . k_{h,i}
/ sqrt(d_h))`` per head ``h``, the attention output ``o = sum_i sum_h a_{h,i} W_out[:, h] v_{h,i} + b_out`` and
the embedding ``e = o + MLP(LayerNorm(o))``, then discards the attention. :func:`pool` recomputes the same
numbers (checked against the module in the tests) and keeps every piece.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Pooled:
    """One pass of the head over a batch. B images, N patches, H heads, D width.

    ``attention`` (B, H, N) softmax weights; ``values`` (B, N, H, D): ``W_out[:, h] v_{h,i}``, each patch's
    value through the output projection, one per head (no bias); ``output`` (B, D): the attention output
    ``o``; ``embedding`` (B, D): ``o + MLP(LayerNorm(o))``, equal to the tower's ``pooler_output``."""

    attention: torch.Tensor
    values: torch.Tensor
    output: torch.Tensor
    embedding: torch.Tensor


def vision_tower(model: Any) -> Any:
    """The ``SiglipVisionTransformer`` of a ``SiglipModel`` (or the tower itself). Raises ValueError
    when it has no attention-pooling head."""
    tower = getattr(model, "vision_model", model)
    if not getattr(tower, "use_head", False):
        raise ValueError("this vision tower has no attention-pooling head to explain")
    return tower


def pool(head: Any, tokens: torch.Tensor) -> Pooled:
    """Run ``head`` (a ``SiglipMultiheadAttentionPoolingHead``) on ``tokens`` (B, N, D), keeping the pieces.
    Differentiable: gradients flow to ``attention`` when it is made a leaf by the caller's hook."""
    return finish(head, tokens, attention_of(head, tokens))


def attention_of(head: Any, tokens: torch.Tensor) -> torch.Tensor:
    """The probe's softmax attention over the patches: (B, N, D) -> (B, H, N), the tokens' dtype."""
    mha = head.attention
    width, heads = tokens.shape[-1], mha.num_heads
    w_q, w_k, _ = mha.in_proj_weight.chunk(3)
    b_q, b_k, _ = mha.in_proj_bias.chunk(3)
    query = (head.probe[0, 0] @ w_q.T + b_q).reshape(heads, width // heads)
    keys = (tokens @ w_k.T + b_k).unflatten(-1, (heads, width // heads))  # (B, N, H, d)
    logits = torch.einsum("hd,bnhd->bhn", query, keys) / (width // heads) ** 0.5
    return logits.softmax(dim=-1)


def finish(head: Any, tokens: torch.Tensor, attention: torch.Tensor) -> Pooled:
    """The rest of the head for a given ``attention`` (B, H, N): per-head projected values, ``o`` and ``e``."""
    mha = head.attention
    width, heads = tokens.shape[-1], mha.num_heads
    _, _, w_v = mha.in_proj_weight.chunk(3)
    _, _, b_v = mha.in_proj_bias.chunk(3)
    values = (tokens @ w_v.T + b_v).unflatten(-1, (heads, width // heads))  # (B, N, H, d)
    w_out = mha.out_proj.weight.unflatten(1, (heads, width // heads))  # (D, H, d)
    projected = torch.einsum("bnhd,ehd->bnhe", values, w_out)  # (B, N, H, D)
    output = torch.einsum("bhn,bnhe->be", attention, projected) + mha.out_proj.bias
    embedding = output + head.mlp(head.layernorm(output))
    return Pooled(attention, projected, output, embedding)


def patch_tokens(model: Any, pixel_values: torch.Tensor, layers: int = 1) -> list[torch.Tensor]:
    """The post-layernorm patch tokens (B, N, D) of the last ``layers`` encoder blocks, last block last:
    one forward pass of the vision tower. The final entry is what the head pools."""
    tower = vision_tower(model)
    hidden = tower.embeddings(pixel_values)
    kept = []
    blocks = tower.encoder.layers
    for index, block in enumerate(blocks):
        hidden = block(hidden, None)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        if index >= len(blocks) - layers:
            kept.append(tower.post_layernorm(hidden))
    return kept
