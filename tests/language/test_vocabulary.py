"""Out-of-vocabulary detection with MedSigLIP's real tokenizer (the copy in shared/reference; skipped when
it is absent): Korean is bytes before translation and words after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from medsearch.language import Translator
from medsearch.language.glossary import builtin_glossary
from medsearch.language.vocabulary import foreign_script, out_of_vocabulary, unknown_share

from tests.language.test_translate import GUIDE_PROMPTS

TOKENIZER = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "siglip-tokenizer"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    if not (TOKENIZER / "spiece.model").exists():
        pytest.skip(f"no SigLIP tokenizer at {TOKENIZER}")
    from transformers import SiglipTokenizer

    return SiglipTokenizer.from_pretrained(str(TOKENIZER))


def test_the_issue_example_is_mostly_byte_pieces(tokenizer: Any) -> None:
    pieces = [p for p in tokenizer.tokenize("폐렴이 있는 흉부 X-ray") if p != "\u2581"]
    assert unknown_share(tokenizer, "폐렴이 있는 흉부 X-ray") == pytest.approx(21 / len(pieces))
    assert out_of_vocabulary(tokenizer, "폐렴이 있는 흉부 X-ray")


@pytest.mark.parametrize("korean", GUIDE_PROMPTS)
def test_korean_is_out_of_vocabulary_before_and_in_vocabulary_after(tokenizer: Any, korean: str) -> None:
    assert out_of_vocabulary(tokenizer, korean)
    english = Translator(builtin_glossary()).translate(korean, tokenizer).english
    assert unknown_share(tokenizer, english) == 0.0


def test_latin_words_the_tokenizer_reads_as_bytes_are_reported(tokenizer: Any) -> None:
    assert not foreign_script("pneumonia \U0001fac1") and foreign_script("폐렴")
    found = Translator(builtin_glossary()).translate("pneumonia \U0001fac1", tokenizer)
    assert (found.english, found.unknown) == ("pneumonia", ("\U0001fac1",))
    assert Translator(builtin_glossary()).translate("café au lait spots", tokenizer).unknown == ()
