"""Tiny SigLIP models and a captioned image set for tests.

MedSigLIP-448 cannot be downloaded here, so tests use a SigLIP two-tower model of the same
Hugging Face class (``SiglipModel``), shrunk to 32-wide towers, saved to a folder that loads through
``AutoModel`` / ``AutoProcessor`` / ``AutoTokenizer`` / ``AutoImageProcessor`` like the real one:
``config.json``, ``model.safetensors``, ``spiece.model``, ``tokenizer_config.json``,
``processor_config.json`` (about 0.5 MB in all).

- :func:`build_tiny_siglip`: random weights (seeded), a SentencePiece vocabulary trained in-process.
- :func:`make_caption_images`: PNG files of six drawn classes (coloured shapes), with captions.
- :func:`train_tiny_siglip`: the tiny model trained with the SigLIP pairwise sigmoid loss on those
  classes, so that a text query for a class caption ranks that class's images first.

Image preprocessing follows the production order: RGB uint8 -> float32 in [0, 1] -> zero-pad to a
centred square -> the folder's processor with ``do_rescale=False`` (bicubic resize to 32 x 32,
``(x - 0.5) / 0.5``). Text is tokenized with ``padding="max_length", max_length=TEXT_MAX_LENGTH``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    import torch
    from transformers import SiglipModel

EMBED_DIM = 32
IMAGE_SIZE = 32
PATCH_SIZE = 8
TEXT_MAX_LENGTH = 16
CANVAS_SIZES: tuple[tuple[int, int], ...] = ((64, 64), (64, 48), (48, 64), (80, 56))
"""(width, height) of drawn images; non-square ones exercise the zero-padding step."""

CLASS_CAPTIONS: dict[str, tuple[str, ...]] = {
    "red_circle": ("a red circle", "red circle", "a round red shape"),
    "blue_square": ("a blue square", "blue square", "a square blue box"),
    "green_stripes": ("green horizontal stripes", "horizontal green lines", "a pattern of green stripes"),
    "yellow_triangle": ("a yellow triangle", "yellow triangle", "a triangular yellow shape"),
    "white_cross": ("a white cross", "white cross", "a white plus sign"),
    "black_dot": ("a black dot on white", "black dot on a white background", "a small dark spot on white"),
}
"""Each class's captions; the first one is the class's main caption."""

CLASS_NAMES: tuple[str, ...] = tuple(CLASS_CAPTIONS)

_RADIOLOGY_SENTENCES: tuple[str, ...] = (
    "frontal chest x-ray with no acute cardiopulmonary process",
    "the heart is enlarged consistent with cardiomegaly",
    "small left pleural effusion with adjacent atelectasis",
    "large right pleural effusion",
    "right upper lobe consolidation concerning for pneumonia",
    "no pneumothorax is seen",
    "a small apical pneumothorax on the left",
    "mild pulmonary edema with interstitial markings",
    "the lungs are clear and the mediastinum is normal",
    "endotracheal tube and central venous catheter in place",
    "axial ct of the abdomen shows a hypodense liver lesion",
    "fracture of the distal radius on the wrist radiograph",
    "mammogram with a spiculated mass in the upper outer quadrant",
    "histopathology slide with invasive ductal carcinoma",
    "fundus photograph with diabetic retinopathy",
    "dermatology photo of a pigmented skin lesion suspicious for melanoma",
    "bilateral lower lobe opacities and a nodule in the right lung",
    "normal chest radiograph of a healthy adult patient",
)
_FILLER_SENTENCES: tuple[str, ...] = (
    "a photo of a red circle on a dark background",
    "two blue squares and one green triangle",
    "a picture with horizontal and vertical stripes",
    "white black grey red green blue yellow orange purple",
    "the quick brown fox jumps over the lazy dog",
    "digits 0 1 2 3 4 5 6 7 8 9 and more letters j k q v x z",
)


@dataclass(frozen=True)
class CaptionedImage:
    """One PNG written by :func:`make_caption_images`: its path, class name and main caption."""

    path: Path
    class_name: str
    caption: str


def tokenizer_corpus() -> list[str]:
    """The built-in sentences the SentencePiece vocabulary is trained on (radiology + shapes)."""
    captions = [caption for captions in CLASS_CAPTIONS.values() for caption in captions]
    return [*_RADIOLOGY_SENTENCES, *_FILLER_SENTENCES, *captions] * 4


def train_sentencepiece(vocab_size: int = 256) -> bytes:
    """Train a unigram SentencePiece model on :func:`tokenizer_corpus`; return the model bytes.

    Ids follow the SigLIP layout: 0 ``<pad>``, 1 ``</s>`` (SiglipTokenizer's eos and pad), 2 ``<unk>``,
    no bos. ``vocab_size`` is a soft limit: the corpus may yield fewer pieces. Deterministic.
    """
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tokenizer_corpus()),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def save_processor(out_dir: Path) -> Any:
    """Write ``spiece.model`` and a SiglipProcessor (tokenizer + 32 x 32 image processor) to ``out_dir``.

    Returns the processor. The image processor is the PIL backend of SiglipImageProcessor (torchvision
    is not installed here); its saved type is ``SiglipImageProcessor``, as in the real checkpoint.
    """
    from transformers import SiglipImageProcessorPil, SiglipProcessor, SiglipTokenizer
    from transformers.image_utils import PILImageResampling

    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_file = out_dir / "spiece.model"
    vocab_file.write_bytes(train_sentencepiece())
    tokenizer = SiglipTokenizer(vocab_file=str(vocab_file), model_max_length=TEXT_MAX_LENGTH)
    image_processor = SiglipImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_rescale=True,
        resample=PILImageResampling.BICUBIC,
    )
    processor = SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    processor.save_pretrained(out_dir)
    return processor


def tiny_siglip_config(vocab_size: int, pad_token_id: int, eos_token_id: int, patch_size: int = PATCH_SIZE) -> Any:
    """A SiglipConfig with 32-wide, 2-layer, 4-head towers; images 32 x 32 in ``patch_size`` patches (8: a
    4 x 4 grid; 4: the 8 x 8 grid of the explain tests)."""
    from transformers import SiglipConfig

    text_config = {
        "vocab_size": vocab_size,
        "hidden_size": EMBED_DIM,
        "intermediate_size": 2 * EMBED_DIM,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": TEXT_MAX_LENGTH,
        "pad_token_id": pad_token_id,
        "bos_token_id": None,
        "eos_token_id": eos_token_id,
    }
    vision_config = {
        "hidden_size": EMBED_DIM,
        "intermediate_size": 2 * EMBED_DIM,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": IMAGE_SIZE,
        "patch_size": patch_size,
    }
    return SiglipConfig(text_config=text_config, vision_config=vision_config)


def random_tiny_siglip(tokenizer: Any, seed: int, patch_size: int = PATCH_SIZE) -> SiglipModel:
    """A random-weight SiglipModel for ``tokenizer``'s vocabulary, from ``torch.manual_seed(seed)``.

    ``logit_scale`` / ``logit_bias`` start at log(10) / -10, the SigLIP paper's initialisation.
    """
    import torch
    from transformers import SiglipModel

    config = tiny_siglip_config(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, patch_size)
    torch.manual_seed(seed)
    model = SiglipModel(config)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-10.0)
    return model.eval()


def build_tiny_siglip(out_dir: Path, seed: int = 0, patch_size: int = PATCH_SIZE) -> Path:
    """Save a random-weight tiny SiglipModel and its processor to ``out_dir``; return ``out_dir``.

    The same ``seed`` gives identical weights. Embeddings are ``EMBED_DIM`` (32) wide for both towers.
    Takes well under a second.
    """
    out_dir = Path(out_dir)
    processor = save_processor(out_dir)
    model = random_tiny_siglip(processor.tokenizer, seed, patch_size)
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def _jitter(rgb: tuple[int, int, int], rng: np.random.Generator, amount: int = 30) -> tuple[int, ...]:
    """``rgb`` with each channel moved by up to ``amount``, clipped to [0, 255]."""
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _box(width: int, height: int, rng: np.random.Generator, low: float, high: float) -> list[int]:
    """A random square box [x0, y0, x1, y1] inside the canvas, side ``low``..``high`` of the short edge."""
    side = int(min(width, height) * rng.uniform(low, high))
    x0 = int(rng.integers(0, width - side + 1))
    y0 = int(rng.integers(0, height - side + 1))
    return [x0, y0, x0 + side, y0 + side]


def _draw_shape(
    draw: ImageDraw.ImageDraw, class_name: str, size: tuple[int, int], rng: np.random.Generator
) -> None:
    """Draw ``class_name``'s figure onto ``draw`` (a canvas of ``size`` = (width, height))."""
    width, height = size
    if class_name == "red_circle":
        draw.ellipse(_box(width, height, rng, 0.4, 0.7), fill=_jitter((220, 30, 30), rng))
    elif class_name == "blue_square":
        draw.rectangle(_box(width, height, rng, 0.4, 0.7), fill=_jitter((30, 60, 220), rng))
    elif class_name == "green_stripes":
        colour, period = _jitter((40, 200, 60), rng), int(rng.integers(8, 14))
        for top in range(int(rng.integers(0, period)), height, period):
            draw.rectangle([0, top, width, top + period // 2 - 1], fill=colour)
    elif class_name == "yellow_triangle":
        x0, y0, x1, y1 = _box(width, height, rng, 0.45, 0.75)
        draw.polygon([((x0 + x1) // 2, y0), (x0, y1), (x1, y1)], fill=_jitter((230, 210, 30), rng))
    elif class_name == "white_cross":
        x0, y0, x1, y1 = _box(width, height, rng, 0.45, 0.75)
        bar, mid_x, mid_y = max(3, (x1 - x0) // 4), (x0 + x1) // 2, (y0 + y1) // 2
        colour = _jitter((240, 240, 240), rng, 15)
        draw.rectangle([x0, mid_y - bar // 2, x1, mid_y + bar // 2], fill=colour)
        draw.rectangle([mid_x - bar // 2, y0, mid_x + bar // 2, y1], fill=colour)
    elif class_name == "black_dot":
        draw.ellipse(_box(width, height, rng, 0.15, 0.3), fill=_jitter((15, 15, 15), rng, 15))
    else:
        raise ValueError(f"unknown class {class_name!r}; expected one of {CLASS_NAMES}")


def draw_class_image(class_name: str, rng: np.random.Generator) -> Image.Image:
    """Draw one RGB image of ``class_name``: random canvas size, position, size, colour jitter and noise.

    Backgrounds are dark (grey 0-60) except for ``black_dot``, which sits on white (200-255).
    Raises ValueError for an unknown class.
    """
    size = CANVAS_SIZES[int(rng.integers(len(CANVAS_SIZES)))]
    grey = int(rng.integers(200, 256)) if class_name == "black_dot" else int(rng.integers(0, 61))
    image = Image.new("RGB", size, (grey, grey, grey))
    _draw_shape(ImageDraw.Draw(image), class_name, size, rng)
    noise = rng.normal(0.0, 6.0, size=(size[1], size[0], 3))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="RGB")


def make_caption_images(out_dir: Path, per_class: int, seed: int) -> list[CaptionedImage]:
    """Write ``per_class`` PNGs of every class in ``CLASS_NAMES`` to ``out_dir``; return their records.

    Files are named ``<class>_<index:03d>.png``; images are RGB uint8, 64x64, 64x48, 48x64 or 80x56
    (width x height). The same ``seed`` writes the same pixels.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    records = []
    for class_name in CLASS_NAMES:
        for index in range(per_class):
            path = out_dir / f"{class_name}_{index:03d}.png"
            draw_class_image(class_name, rng).save(path)
            records.append(CaptionedImage(path, class_name, CLASS_CAPTIONS[class_name][0]))
    return records


def pad_to_square(pixels: np.ndarray) -> np.ndarray:
    """Zero-pad an (H, W, C) array to a centred (S, S, C) square, S = max(H, W); dtype is kept."""
    height, width = pixels.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    square = np.zeros((side, side, *pixels.shape[2:]), dtype=pixels.dtype)
    square[top : top + height, left : left + width] = pixels
    return square


def pixel_values(images: list[Image.Image], image_processor: Any) -> torch.Tensor:
    """RGB PIL images -> float32 tensor (N, 3, 32, 32) in [-1, 1], as the production pipeline does it.

    uint8 -> float32 [0, 1] -> zero-pad to a centred square -> ``image_processor(do_rescale=False)``.
    """
    squares = [pad_to_square(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0) for image in images]
    batch = image_processor(images=squares, do_rescale=False, return_tensors="pt")
    return batch["pixel_values"]


TRAIN_STEPS = 500
TRAIN_BATCH = 48
TRAIN_POOL_PER_CLASS = 64


def training_pool(processor: Any, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """In-memory training images through ``processor``: pixel values (N, 3, 32, 32) and class ids (N,)."""
    import torch

    rng = np.random.default_rng(seed)
    labels = [label for label in range(len(CLASS_NAMES)) for _ in range(per_class)]
    images = [draw_class_image(CLASS_NAMES[label], rng) for label in labels]
    return pixel_values(images, processor.image_processor), torch.tensor(labels)


def caption_ids(tokenizer: Any) -> torch.Tensor:
    """Every class's captions tokenized to ``TEXT_MAX_LENGTH``: int64 ids (classes, captions, length)."""
    texts = [text for name in CLASS_NAMES for text in CLASS_CAPTIONS[name]]
    ids = tokenizer(
        texts, padding="max_length", max_length=TEXT_MAX_LENGTH, truncation=True, return_tensors="pt"
    )
    return ids["input_ids"].reshape(len(CLASS_NAMES), -1, TEXT_MAX_LENGTH)


def sigmoid_pair_loss(
    model: SiglipModel, pixels: torch.Tensor, input_ids: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """SigLIP's pairwise sigmoid loss for a batch of (image, caption) pairs with class ``labels``.

    Every text is scored against every image with ``exp(logit_scale) * cos + logit_bias``; a pair is
    positive when the classes match (not only on the diagonal). Sum over images, mean over texts.
    """
    import torch
    import torch.nn.functional as F

    images = F.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    texts = F.normalize(model.get_text_features(input_ids=input_ids).pooler_output, dim=-1)
    logits = texts @ images.T * model.logit_scale.exp() + model.logit_bias
    signs = 2.0 * (labels[:, None] == labels[None, :]).float() - 1.0
    return -torch.sum(F.logsigmoid(signs * logits)) / labels.shape[0]


def fit(model: SiglipModel, processor: Any, steps: int, seed: int) -> list[float]:
    """Train ``model`` in place: ``steps`` AdamW steps on drawn images, each paired with a random caption
    of its class. Returns the loss per step. Deterministic for a given seed and thread count.
    """
    import torch

    pixels, labels = training_pool(processor, TRAIN_POOL_PER_CLASS, seed)
    ids = caption_ids(processor.tokenizer)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    model.train()
    losses = []
    for _ in range(steps):
        batch = torch.randperm(len(labels), generator=generator)[:TRAIN_BATCH]
        captions = torch.randint(0, ids.shape[1], (len(batch),), generator=generator)
        loss = sigmoid_pair_loss(model, pixels[batch], ids[labels[batch], captions], labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return losses


def train_tiny_siglip(out_dir: Path, seed: int = 0, *, steps: int = TRAIN_STEPS, patch_size: int = PATCH_SIZE) -> Path:
    """Build the tiny model in ``out_dir`` (as :func:`build_tiny_siglip`), train it, save it over; return it.

    Training: ``steps`` AdamW steps of the pairwise sigmoid loss on images drawn in memory from ``seed``
    (the same drawing code as :func:`make_caption_images`), preprocessed by the folder's own processor.
    A fixed step count, not a wall-clock budget, keeps it reproducible: the same seed gives the same
    weights. Runs on 1 torch thread (the caller's thread count is restored): the tiny towers gain little
    from a second thread on a quiet machine, and beside CPU-bound processes two threads spinning at each
    step's barrier made 100 steps take 168 s instead of 24 s on 2 busy cores.
    """
    import torch
    from transformers import AutoProcessor

    out_dir = build_tiny_siglip(out_dir, seed, patch_size)
    processor = AutoProcessor.from_pretrained(out_dir)
    model = random_tiny_siglip(processor.tokenizer, seed, patch_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(model, processor, steps, seed)
    finally:
        torch.set_num_threads(threads)
    model.eval().save_pretrained(out_dir, safe_serialization=True)
    return out_dir
