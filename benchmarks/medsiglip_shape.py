"""A random-weight SigLIP of exactly MedSigLIP-448's shape, saved to a folder that loads through
``medsearch.indexer.model_loading.load_embedder`` like the real checkpoint.

Shape (the public MedSigLIP-448 config, that of SigLIP-So400m/14): both towers hidden 1152, MLP 4304,
16 heads, gelu_pytorch_tanh, layer-norm eps 1e-6; vision 448 x 448 in 14 x 14 patches (1024 tokens);
text vocabulary 32,000, 64 positions, projection 1152. ``layers`` (27 in the real model) shortens both
towers for quick runs: the cost per layer is the real one, so a run with N layers times the real model's
layers at 1/27 of the work each (see :func:`image_gflops`).

The tokenizer is a small SentencePiece model trained in-process (the gated vocabulary cannot be had
here): fewer real pieces than 32,000, but the embedding table and every shape are the real ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HIDDEN = 1152
INTERMEDIATE = 4304
HEADS = 16
LAYERS = 27
IMAGE_SIZE = 448
PATCH_SIZE = 14
TEXT_LENGTH = 64
VOCAB = 32000


def medsiglip_config(layers: int = LAYERS) -> Any:
    """A ``SiglipConfig`` of MedSigLIP-448's shape with ``layers`` layers in each tower."""
    from transformers import SiglipConfig

    common = {"hidden_size": HIDDEN, "intermediate_size": INTERMEDIATE, "num_hidden_layers": layers,
              "num_attention_heads": HEADS, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6}
    text = {**common, "vocab_size": VOCAB, "max_position_embeddings": TEXT_LENGTH, "projection_size": HIDDEN,
            "pad_token_id": 1, "eos_token_id": 1, "bos_token_id": None}
    vision = {**common, "image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE}
    return SiglipConfig(text_config=text, vision_config=vision)


def save_processor(out_dir: Path) -> Any:
    """Write ``spiece.model`` and a SiglipProcessor (448 x 448 images, text length 64) to ``out_dir``."""
    from transformers import SiglipImageProcessorPil, SiglipProcessor, SiglipTokenizer
    from transformers.image_utils import PILImageResampling

    from tests.tiny_siglip import train_sentencepiece

    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_file = out_dir / "spiece.model"
    vocab_file.write_bytes(train_sentencepiece())
    tokenizer = SiglipTokenizer(vocab_file=str(vocab_file), model_max_length=TEXT_LENGTH)
    image_processor = SiglipImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
        do_rescale=True, resample=PILImageResampling.BICUBIC,
    )
    processor = SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    processor.save_pretrained(out_dir)
    return processor


def build_medsiglip_shape(out_dir: Path, layers: int = LAYERS, seed: int = 0) -> Path:
    """Save a random-weight SiglipModel of MedSigLIP-448's shape (``layers`` per tower) and its processor
    to ``out_dir``; return ``out_dir``. About 0.6 GB on disk with 2 layers, 3.5 GB with 27."""
    import torch
    from transformers import SiglipModel

    out_dir = Path(out_dir)
    save_processor(out_dir)
    torch.manual_seed(seed)
    model = SiglipModel(medsiglip_config(layers)).eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def image_gflops(layers: int = LAYERS) -> float:
    """Multiply-adds x 2 of one image through the vision tower, in GFLOP (matmuls only).

    Per layer, with T = 1024 tokens, d = 1152, m = 4304: q, k, v, o projections 4 * 2*T*d*d; scores and
    weighted values 2 * 2*T*T*d; MLP 2 * 2*T*d*m. Patch embedding 2*T*(3*14*14)*d. Attention-pooling head:
    k, v projections of the T tokens 2 * 2*T*d*d (the single query, output and MLP are negligible).
    27 layers give about 0.98 TFLOP per image.
    """
    tokens, d, m = (IMAGE_SIZE // PATCH_SIZE) ** 2, HIDDEN, INTERMEDIATE
    per_layer = 4 * 2 * tokens * d * d + 2 * 2 * tokens * tokens * d + 2 * 2 * tokens * d * m
    patch = 2 * tokens * 3 * PATCH_SIZE * PATCH_SIZE * d
    head = 2 * 2 * tokens * d * d
    return (layers * per_layer + patch + head) / 1e9
