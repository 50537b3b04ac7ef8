"""The glossary translation on its own: the guide's prompts, particles, word order, unknown words, the
policies and user glossaries (pure logic, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from medsearch.errors import InvalidQuery
from medsearch.labels.labelsets import builtin_label_sets, load_label_set
from medsearch.language import Translator
from medsearch.language.glossary import builtin_glossary, load_glossary, parse_glossary

GUIDE_PROMPTS = {
    "정상 흉부 X-ray": "normal chest x-ray",
    "폐렴이 있는 흉부 X-ray": "chest x-ray with pneumonia",
    "기흉 소견": "findings of pneumothorax",
    "흉막삼출 소견": "findings of pleural effusion",
    "흑색종 의심 병변": "lesion suspicious for melanoma",
    "기저세포암 의심 병변": "lesion suspicious for basal cell carcinoma",
    "습진이 있는 피부": "skin with eczema",
    "건선 소견": "findings of psoriasis",
    "피부 발진": "skin rash",
    "정상 피부": "normal skin",
    "심장비대": "cardiomegaly",
    "심장 비대": "cardiomegaly",
    "흉수": "pleural effusion",
    "늑막삼출": "pleural effusion",
    "좌측 흉막삼출": "left pleural effusion",
    "양측 폐부종": "bilateral pulmonary edema",
    "우하엽의 경화": "right lower lobe consolidation",
    "우측 하엽 무기폐": "right lower lobe atelectasis",
    "우상엽에 결절": "nodule in the right upper lobe",
    "간유리음영": "ground-glass opacity",
    "좌상엽 종괴": "left upper lobe mass",
    "폐기종": "emphysema",
    "늑골 골절": "rib fracture",
    "흉부 엑스레이 정면": "frontal chest x-ray",
    "기흉 의심 소견": "findings suspicious for pneumothorax",
    "기흉이 없는 흉부 X-ray": "chest x-ray without pneumothorax",
    "기흉 없음": "no pneumothorax",
    "폐렴과 기흉": "pneumonia and pneumothorax",
    "흑색종 의심 병변이 있는 피부": "skin with lesion suspicious for melanoma",
    "이상 소견": "abnormal findings",
    "특이 소견 없음": "no significant abnormality",
    "공기가슴증": "pneumothorax",
    "가슴막삼출": "pleural effusion",
}


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator(builtin_glossary())


@pytest.mark.parametrize(("korean", "english"), GUIDE_PROMPTS.items())
def test_guide_prompts_read_as_a_radiologist_writes(translator: Translator, korean: str, english: str) -> None:
    found = translator.translate(korean)
    assert (found.english, found.unknown) == (english, ())


def test_english_stays_exactly_as_typed(translator: Translator) -> None:
    for text in ("Left pleural effusion", "a chest x-ray showing pneumonia", "@weird ~ text"):
        assert translator.translate(text).english == text


def test_unknown_words_are_reported_and_left_out(translator: Translator) -> None:
    found = translator.translate("폐렴이랑 양자역학 흉부 X-ray")
    assert found.unknown == ("이랑", "양자역학")
    assert found.english == "pneumonia chest x-ray"
    assert "양자역학" in (found.warning() or "")


def test_a_one_syllable_term_does_not_eat_into_an_unknown_word(translator: Translator) -> None:
    # "판" (plaque) and "폐" (lung) are terms; "판단" and "폐지" are other words
    assert translator.translate("판단 폐지 기흉").unknown == ("판단", "폐지")


def test_refuse_names_the_words_and_nothing_understood_is_refused() -> None:
    refusing = Translator(builtin_glossary(), "refuse")
    with pytest.raises(InvalidQuery, match="양자역학"):
        refusing.translate("양자역학 흉부")
    with pytest.raises(InvalidQuery, match="no word"):
        Translator(builtin_glossary()).translate("양자역학")
    with pytest.raises(InvalidQuery, match="no word"):
        Translator(builtin_glossary()).translate("пневмония")
    assert Translator(builtin_glossary(), "off").translate("기흉").english == "기흉"
    with pytest.raises(InvalidQuery, match="policy"):
        Translator(builtin_glossary(), "guess")


def test_longest_match_first() -> None:
    glossary = parse_glossary('[finding]\n"폐" = "lung"\n"폐렴" = "pneumonia"\n"폐렴구균 폐렴" = '
                              '"pneumococcal pneumonia"\n', "test")
    translator = Translator(glossary)
    assert translator.english("폐렴구균 폐렴") == "pneumococcal pneumonia"
    assert translator.english("폐렴") == "pneumonia"


def test_user_glossary_adds_and_overrides(tmp_path: Path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text('[finding]\n"기흉" = "pneumothorax (user)"\n"흉관" = "chest drain"\n', encoding="utf-8")
    translator = Translator(load_glossary([user]))
    assert translator.english("흉관이 있는 기흉") == "pneumothorax (user) with chest drain"
    with pytest.raises(InvalidQuery, match="not found"):
        load_glossary([tmp_path / "absent.toml"])
    (tmp_path / "bad.toml").write_text('[disease]\n"x" = "y"\n', encoding="utf-8")
    with pytest.raises(InvalidQuery, match="kind of term"):
        load_glossary([tmp_path / "bad.toml"])


def test_settings_name_the_glossary_and_the_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "mine.toml"
    user.write_text('[finding]\n"양자역학" = "quantum mechanics"\n', encoding="utf-8")
    monkeypatch.setenv("MEDSEARCH_GLOSSARY", str(user))
    monkeypatch.setenv("MEDSEARCH_UNKNOWN_WORDS", "refuse")
    translator = Translator.from_settings()
    assert (translator.english("양자역학"), translator.policy) == ("quantum mechanics", "refuse")


def test_korean_display_names_of_built_in_sets_translate_to_their_label(translator: Translator) -> None:
    for name in builtin_label_sets():
        for label in load_label_set(name).labels:
            assert label.korean, f"{name}: {label.name} has no Korean name"
            found = translator.translate(label.korean)
            assert found.unknown == ()
            assert found.english.replace(" ", "_").endswith(label.name), (label.korean, found.english)


def test_searched_as_reads_the_text_part_of_a_query(tmp_path: Path) -> None:
    from medsearch.api import Medsearch

    with Medsearch.open(tmp_path / "store", create=True, translator=Translator(builtin_glossary())) as ms:
        assert ms.searched_as("기흉@0.5").as_dict() == {"searched_as": "pneumothorax", "not_understood": []}
        assert ms.searched_as("id:3").english == "id:3"
        assert ms.english("좌측 기흉") == "left pneumothorax"
