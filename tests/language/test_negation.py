"""Negation, nonsense and missing words (issue 31), pure logic: the parser over a list of negation forms
in English and Korean (no negated finding is ever embedded as a positive), pseudo-negations and double
negations, queries with no content word refused alike in both languages, the glossary's new words, "did
you mean", natural word order, and the Korean coverage list."""

from __future__ import annotations

import pytest
from medsearch.errors import InvalidQuery
from medsearch.language import Translator
from medsearch.language.glossary import builtin_glossary
from medsearch.language.meaning import NEGATED_WEIGHT, parse_query, query_parts, searched
from medsearch.language.negation import parse_english
from medsearch.language.present import header
from medsearch.query.compose import Part, parse_part

from tests.language.korean_coverage import cases, score

NEGATED = {  # query -> (the affirmed text embedded as the positive part, the negated findings)
    "no pneumothorax": ("", ("pneumothorax",)),
    "No pneumothorax.": ("", ("pneumothorax",)),
    "without pleural effusion": ("", ("pleural effusion",)),
    "pneumonia without pleural effusion": ("pneumonia", ("pleural effusion",)),
    "absent pneumothorax": ("", ("pneumothorax",)),
    "absence of pneumothorax": ("", ("pneumothorax",)),
    "negative for covid-19": ("", ("covid-19",)),
    "free of fracture": ("", ("fracture",)),
    "no evidence of pneumothorax": ("", ("pneumothorax",)),
    "no signs of pneumonia": ("", ("pneumonia",)),
    "pneumothorax ruled out": ("", ("pneumothorax",)),
    "pneumothorax is ruled out": ("", ("pneumothorax",)),
    "ruled out pneumothorax": ("", ("pneumothorax",)),
    "pneumothorax excluded": ("", ("pneumothorax",)),
    "pneumothorax absent": ("", ("pneumothorax",)),
    "pneumothorax not seen": ("", ("pneumothorax",)),
    "no pneumothorax is seen": ("", ("pneumothorax",)),
    "the pneumothorax is not seen": ("", ("pneumothorax",)),
    "not seen: pneumothorax": ("", ("pneumothorax",)),
    "covid negative": ("", ("covid",)),
    "effusion has resolved": ("", ("effusion",)),
    "not pneumonia": ("", ("pneumonia",)),
    "no pneumothorax or effusion": ("", ("pneumothorax", "effusion")),
    "no pneumothorax, effusion or consolidation": ("", ("pneumothorax", "effusion", "consolidation")),
    "neither pneumothorax nor effusion": ("", ("pneumothorax", "effusion")),
    "no pneumothorax and pleural effusion": ("", ("pneumothorax", "pleural effusion")),
    "pneumonia but no effusion": ("pneumonia", ("effusion",)),
    "pneumonia, no effusion and no pneumothorax": ("pneumonia", ("effusion", "pneumothorax")),
    "chest x-ray without pneumothorax": ("chest x-ray", ("pneumothorax",)),
    "no pneumothorax, effusion is present": ("effusion", ("pneumothorax",)),
    "effusion absent, pneumonia present": ("pneumonia", ("effusion",)),
    "cardiomegaly; no pulmonary edema": ("cardiomegaly", ("pulmonary edema",)),
    "a red circle without a blue square": ("a red circle", ("a blue square",)),
    # Korean, through the glossary
    "기흉 없음": ("", ("pneumothorax",)),
    "기흉없음": ("", ("pneumothorax",)),
    "기흉 없음.": ("", ("pneumothorax",)),
    "기흉이 없는 흉부 X-ray": ("chest x-ray", ("pneumothorax",)),
    "기흉은 없고 폐렴 소견": ("findings of pneumonia", ("pneumothorax",)),
    "기흉 없음, 흉막삼출 있음": ("pleural effusion", ("pneumothorax",)),
    "기흉, 흉막삼출 없음": ("", ("pneumothorax", "pleural effusion")),
    "기흉 및 흉막삼출 없음": ("", ("pneumothorax", "pleural effusion")),
    "폐렴과 기흉 없음": ("", ("pneumonia", "pneumothorax")),
    "기흉 없이 폐렴": ("pneumonia", ("pneumothorax",)),
    "기흉은 없으나 피하기종 있음": ("subcutaneous emphysema", ("pneumothorax",)),
    "폐렴 있고 흉막삼출 없음": ("pneumonia", ("pleural effusion",)),
    "심장비대 있으며 폐부종 없음": ("cardiomegaly", ("pulmonary edema",)),
    "폐렴 아님": ("", ("pneumonia",)),
    "폐렴이 아닌 경화": ("consolidation", ("pneumonia",)),
    "결핵 음성": ("", ("tuberculosis",)),
    "코로나 음성": ("", ("COVID-19",)),
    "기흉 배제": ("", ("pneumothorax",)),
    "기흉 배제됨": ("", ("pneumothorax",)),
    "기흉 안 보임": ("", ("pneumothorax",)),
    "기흉 보이지 않음": ("", ("pneumothorax",)),
    "흉막삼출 관찰되지 않음": ("", ("pleural effusion",)),
    "뇌출혈 확인되지 않음": ("", ("intracranial hemorrhage",)),
    "기흉이 보이지 않는 흉부 X-ray": ("chest x-ray", ("pneumothorax",)),
}

AFFIRMED = {  # pseudo-negations, hedges and double negations: the finding stays affirmed
    "no change in pleural effusion": "pleural effusion",
    "no interval change in pleural effusion": "pleural effusion",
    "unchanged pleural effusion": "pleural effusion",
    "pleural effusion cannot be excluded": "pleural effusion",
    "cannot rule out pneumonia": "pneumonia",
    "pneumonia not ruled out": "pneumonia",
    "not without pneumonia": "pneumonia",
    "rule out pneumonia": "pneumonia",
    "흉막삼출 변화 없음": "pleural effusion",
    "폐렴 배제할 수 없음": "suspected pneumonia",
    "기흉 없지 않음": "pneumothorax",
    "no significant abnormality": "no significant abnormality",
    "negative pressure pulmonary edema": "negative pressure pulmonary edema",
    "non small cell lung cancer": "non small cell lung cancer",
    "특이 소견 없음": "no significant abnormality",
    "급성 심폐 이상 없음": "no acute cardiopulmonary abnormality",
}

JUNK = ["the of and", "?", "no", "No.", "not", "...", "  ,;  ", "without", "absent", "show me the images",
        "는 의 가", "없음", "없는", "아님", "의", "음성 없음"]


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator(builtin_glossary())


@pytest.mark.parametrize(("text", "meant"), NEGATED.items())
def test_no_negated_finding_is_embedded_as_a_positive(translator: Translator, text: str,
                                                      meant: tuple[str, tuple[str, ...]]) -> None:
    parsed = parse_query(text, translator)
    assert (parsed.positive, parsed.negated) == meant
    parts = query_parts([parse_part(f"{text}@2")], translator)
    positive = [part.value for part in parts if part.weight > 0]
    assert positive == ([meant[0]] if meant[0] else [])
    assert all(finding not in value for finding in meant[1] for value in positive)
    assert [part for part in parts if part.weight < 0] == [
        Part("text", finding, -NEGATED_WEIGHT * 2) for finding in meant[1]]


@pytest.mark.parametrize(("text", "positive"), AFFIRMED.items())
def test_pseudo_negations_hedges_and_double_negations_affirm(translator: Translator, text: str,
                                                             positive: str) -> None:
    parsed = parse_query(text, translator)
    assert (parsed.positive, parsed.negated) == (positive, ())


@pytest.mark.parametrize("text", JUNK)
def test_a_query_with_no_content_word_is_refused_in_both_languages(translator: Translator, text: str) -> None:
    with pytest.raises(InvalidQuery) as refused:
        query_parts([parse_part(text)], translator)
    assert str(refused.value).startswith(f"no search term in {text!r}: ") and "\n" not in str(refused.value)


def test_text_without_negation_stays_one_part_as_typed(translator: Translator) -> None:
    for text in ("Left pleural effusion", "a chest x-ray showing pneumonia", "폐렴이 있는 흉부 X-ray"):
        assert query_parts([parse_part(text)], translator) == [parse_part(text)]
    unlike = parse_part("no pneumothorax", sign=-1.0)
    assert query_parts([parse_part("pneumonia"), unlike], translator)[1] == unlike
    with pytest.raises(InvalidQuery, match="positive part"):
        query_parts([unlike], translator)


def test_output_says_what_was_searched(translator: Translator) -> None:
    said = searched("pneumonia, no pneumothorax", translator)
    assert said.searched == "pneumonia; not: pneumothorax"
    assert header("search: pneumonia, no pneumothorax", said) == (
        "search: pneumonia, no pneumothorax (searched as: pneumonia; not: pneumothorax)")
    assert said.as_dict() == {"searched_as": "pneumonia; not: pneumothorax", "not_understood": [],
                              "negated": ["pneumothorax"]}
    korean = searched("기흉은 없고 폐렴 소견 양자역학", translator)
    assert header("search: q", korean) == (
        "search: q (searched as: findings of pneumonia; not: pneumothorax; left out: 양자역학)")
    assert header("search: pneumonia", searched("pneumonia", translator)) == "search: pneumonia"


GLOSSARY_WORDS = {  # one per group of new words
    "기관내관": "endotracheal tube", "중심정맥관": "central venous catheter", "비위관": "nasogastric tube",
    "심박동기": "pacemaker", "코로나": "COVID-19", "코로나 폐렴": "COVID-19 pneumonia",
    "폐색전증": "pulmonary embolism", "쇄골 골절": "clavicle fracture", "요추": "lumbar spine",
    "간": "liver", "비장": "spleen", "신장": "kidney", "췌장": "pancreas", "담낭": "gallbladder",
    "삼출": "effusion", "폐염": "pneumonia", "페렴": "pneumonia", "심폐": "cardiopulmonary",
    "증가된 음영": "increased opacity",
}


@pytest.mark.parametrize(("korean", "english"), GLOSSARY_WORDS.items())
def test_glossary_covers_devices_covid_embolism_bones_organs_short_forms_and_misspellings(
        translator: Translator, korean: str, english: str) -> None:
    found = translator.translate(korean)
    assert (found.english, found.unknown) == (english, ())


def test_one_syllable_organs_do_not_eat_longer_words(translator: Translator) -> None:
    assert translator.english("간유리음영") == "ground-glass opacity"
    assert translator.english("간질성 폐질환") == "interstitial lung disease"
    assert translator.translate("위치 폐렴").unknown == ("위치",)


def test_natural_word_order(translator: Translator) -> None:
    assert translator.english("흉부 엑스레이 정상") == "normal chest x-ray"
    assert translator.english("흉부 X선 정상") == "normal chest x-ray"
    assert translator.english("폐 정상") == "normal lung"


def test_did_you_mean_for_an_unknown_word_close_to_a_known_one(translator: Translator) -> None:
    found = translator.translate("무기펴 소견")
    assert found.suggestions == ("무기펴 -> 무기폐",)
    assert "did you mean 무기펴 -> 무기폐?" in (found.warning() or "")
    with pytest.raises(InvalidQuery, match="did you mean 폐엄 -> 폐염"):
        translator.translate("폐엄")
    assert translator.translate("양자역학 흉부").suggestions == ()


def test_a_misspelt_negation_is_refused_not_searched_as_present(translator: Translator) -> None:
    for text in ("기흉 업음", "기흉이 업는 흉부 X-ray"):
        with pytest.raises(InvalidQuery, match="looks like a negation"):
            parse_query(text, translator)


def test_english_parser_keeps_spelling_and_case() -> None:
    parsed = parse_english("Right Lower Lobe Pneumonia without Pleural Effusion")
    assert (parsed.affirmed, parsed.negated) == (("Right Lower Lobe Pneumonia",), ("Pleural Effusion",))


def test_korean_coverage_list(translator: Translator) -> None:
    outcomes = [score(case, translator) for case in cases()]
    wrong = [(o.case.query, o.affirmed, o.negated) for o in outcomes if not o.right]
    assert len(outcomes) >= 100
    assert not [o.case.query for o in outcomes if o.inverted]
    assert sum(o.right for o in outcomes) / len(outcomes) >= 0.95, wrong
