"""How long the Korean -> English glossary translation takes per text (it runs on every embedded text,
before the text cache): prints microseconds per call for the guide's prompts, for English text (the
pass-through), and the glossary load time.

    python benchmarks/bench_translate.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import time

from medsearch.language import Translator
from medsearch.language.glossary import builtin_glossary

from tests.language.test_translate import GUIDE_PROMPTS


def per_call_us(translator: Translator, texts: list[str], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for text in texts:
            translator.translate(text)
    return (time.perf_counter() - start) / (repeat * len(texts)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    start = time.perf_counter()
    glossary = builtin_glossary()
    loaded_ms = (time.perf_counter() - start) * 1e3
    translator = Translator(glossary)
    korean = list(GUIDE_PROMPTS)
    english = list(GUIDE_PROMPTS.values())
    print(f"glossary: {len(glossary.terms)} terms, loaded and compiled in {loaded_ms:.1f} ms")
    print(f"korean prompts: {per_call_us(translator, korean, args.repeat):.1f} us per text ({len(korean)} texts)")
    print(f"english text (pass-through): {per_call_us(translator, english, args.repeat):.2f} us per text")


if __name__ == "__main__":
    main()
