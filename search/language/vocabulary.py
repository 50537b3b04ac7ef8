"""Is a text inside the model's vocabulary? By the store's own tokenizer (the share of its pieces that
are UTF-8 byte pieces ``<0xNN>`` or ``<unk>``) and by script (letters outside the Latin script)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

OUT_OF_VOCABULARY_SHARE = 0.3
"""A text whose pieces are more than this share bytes or ``<unk>`` is out of vocabulary: "폐렴이 있는 흉부
X-ray" is 21 of 27 by MedSigLIP's tokenizer."""

_BYTE_PIECE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")
_WORD_START = "\u2581"  # SentencePiece's word-start marker, a piece of its own before some words


def unknown_share(tokenizer: Any, text: str) -> float:
    """The share of ``tokenizer``'s pieces of ``text`` that are byte pieces or its unknown token, in
    [0, 1]; 0.0 for a text with no pieces. ``tokenizer``: a Hugging Face tokenizer (``tokenize``,
    ``unk_token``)."""
    pieces = [piece for piece in tokenizer.tokenize(text) if piece != _WORD_START]
    if not pieces:
        return 0.0
    unknown = sum(1 for piece in pieces if piece == tokenizer.unk_token or _BYTE_PIECE.match(piece))
    return unknown / len(pieces)


def out_of_vocabulary(tokenizer: Any, text: str) -> bool:
    """Whether more than ``OUT_OF_VOCABULARY_SHARE`` of ``text``'s pieces are bytes or ``<unk>``."""
    return unknown_share(tokenizer, text) > OUT_OF_VOCABULARY_SHARE


def foreign_script(text: str) -> bool:
    """Whether ``text`` has a letter outside the Latin script (Hangul, Han, Cyrillic, ...)."""
    return any(char.isalpha() and not unicodedata.name(char, "").startswith("LATIN") for char in text)
