"""The page's words: every key the page asks for (``data-i18n`` in index.html, ``t("...")`` in the
scripts) is in the dictionary, and English and Korean have the same keys."""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "search" / "web"


def _dictionary(language: str) -> set[str]:
    source = (WEB / "i18n.js").read_text(encoding="utf-8")
    block = re.search(rf"\n  {language}: {{\n(.*?)\n  }},", source, re.S)
    assert block, language
    return set(re.findall(r"^    (\w+):", block.group(1), re.M))


def test_english_and_korean_have_the_same_keys() -> None:
    english, korean = _dictionary("en"), _dictionary("ko")
    assert english and english == korean, english ^ korean


def test_every_key_the_page_uses_is_in_the_dictionary() -> None:
    html = (WEB / "index.html").read_text(encoding="utf-8")
    used = set(re.findall(r'data-i18n(?:-placeholder|-title)?="(\w+)"', html))
    for script in (path for path in WEB.glob("*.js") if path.name != "i18n.js"):
        used |= set(re.findall(r'\bt\("(\w+)"', script.read_text(encoding="utf-8")))
    assert len(used) > 30
    assert used <= _dictionary("en"), used - _dictionary("en")
