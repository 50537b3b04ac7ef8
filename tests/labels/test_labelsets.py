"""Label sets: the built-ins load with the expected labels, every format mistake is an InvalidQuery with
a clear message, and the digest is stable and moves with any name, prompt or threshold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from medsearch.errors import InvalidQuery
from medsearch.labels.labelsets import Label, LabelSet, builtin_label_sets, load_label_set, parse_label_list

CXR = ["normal", "pneumonia", "cardiomegaly", "pneumothorax", "pleural_effusion", "atelectasis", "edema",
       "consolidation"]  # fmt: skip
SKIN = ["normal_skin", "rash", "melanoma", "basal_cell_carcinoma", "eczema", "psoriasis"]


def write(tmp_path: Path, text: str, name: str = "labels.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "labels"), [("cxr-findings", CXR), ("skin-lesions", SKIN)])
def test_builtin_sets_load(name: str, labels: list[str]) -> None:
    label_set = load_label_set(name)
    assert list(label_set.names) == labels
    assert label_set.name == name and label_set.description
    for label in label_set.labels:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", label.name)
        assert 3 <= len(label.prompts) <= 5
        assert label.threshold is None


def test_builtin_names() -> None:
    assert builtin_label_sets() == ["cxr-findings", "skin-lesions"]


def test_a_file_with_metadata_and_thresholds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'description = "two findings"\nauthor = "me"\n\n'
        '[pleural_effusion]\nprompts = ["pleural effusion", "  fluid in the pleural space "]\n'
        "threshold = 0.5\n\n"
        '["ground glass"]\nprompts = ["ground-glass opacity"]\nthreshold = 1\n',
    )
    for source in (path, str(path)):
        label_set = load_label_set(source)
        assert label_set.labels == (
            Label("pleural_effusion", ("pleural effusion", "fluid in the pleural space"), 0.5),
            Label("ground glass", ("ground-glass opacity",), 1.0),
        )
        assert label_set.name == "labels"
        assert label_set.metadata == (("author", "me"), ("description", "two findings"))


def test_inline_label_list() -> None:
    label_set = parse_label_list(" normal;pneumonia; pleural effusion ;")
    assert label_set.names == ("normal", "pneumonia", "pleural effusion")
    assert label_set.labels[2] == Label("pleural effusion", ("pleural effusion",), None)


BAD_FILES = [
    ('[a]\nprompts = ["x"\n', "invalid TOML"),
    ('[a]\nprompts = ["x"]\n[a]\nprompts = ["y"]\n', "invalid TOML"),  # TOML itself refuses a repeat
    ("[a]\nthreshold = 0.5\n", "label 'a' needs prompts"),
    ("[a]\nprompts = []\n", "label 'a' needs at least one prompt"),
    ('[a]\nprompts = ["x", "  "]\n', "no prompt may be blank"),
    ('[a]\nprompts = ["x", 3]\n', "a list of texts"),
    ('[a]\nprompts = "x"\n', "a list of texts"),
    ('[a]\nprompts = ["x", "x"]\n', "repeats a prompt"),
    ('[a]\nprompt = ["x"]\n', "unknown key(s) ['prompt']"),
    ('[a]\nprompts = ["x"]\nthreshold = 1.5\n', "threshold must be a probability in [0, 1]"),
    ('[a]\nprompts = ["x"]\nthreshold = "high"\n', "threshold must be a number"),
    ('[a]\nprompts = ["x"]\nthreshold = true\n', "threshold must be a number"),
    ('description = "nothing"\n', "at least one label"),
    ("", "at least one label"),
    ('version = 2\n[a]\nprompts = ["x"]\n', "top-level 'version' must be a table"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_format_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidQuery) as caught:
        load_label_set(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_unreadable_and_unknown_sources(tmp_path: Path) -> None:
    with pytest.raises(InvalidQuery, match=r"label file not found: .*missing\.toml"):
        load_label_set(tmp_path / "missing.toml")
    with pytest.raises(InvalidQuery, match="label file not found"):
        load_label_set(str(tmp_path / "missing.toml"))
    with pytest.raises(InvalidQuery, match="cannot read label file"):
        load_label_set(tmp_path)
    (tmp_path / "latin1.toml").write_bytes(b"[caf\xe9]\nprompts = ['x']\n")
    with pytest.raises(InvalidQuery, match="not UTF-8"):
        load_label_set(tmp_path / "latin1.toml")
    with pytest.raises(
        InvalidQuery, match=r"no built-in label set 'cxr'; built-in: cxr-findings, skin-lesions"
    ):
        load_label_set("cxr")


def test_inline_list_errors() -> None:
    with pytest.raises(InvalidQuery, match="no labels"):
        parse_label_list(" ; ;")
    with pytest.raises(InvalidQuery, match="repeated: normal"):
        parse_label_list("normal;pneumonia;normal")


def test_constructed_sets_are_checked_too() -> None:
    with pytest.raises(InvalidQuery, match="at least one label"):
        LabelSet(())
    with pytest.raises(InvalidQuery, match="needs a name"):
        Label(" ", ("x",))
    with pytest.raises(InvalidQuery, match="threshold"):
        Label("a", ("x",), float("nan"))


def test_digest_is_stable_and_moves_with_the_content(tmp_path: Path) -> None:
    base = load_label_set("cxr-findings")
    assert base.digest() == load_label_set("cxr-findings").digest()
    assert re.fullmatch(r"[0-9a-f]{64}", base.digest())
    first, *rest = base.labels

    def with_first(label: Label) -> LabelSet:
        return LabelSet((label, *rest))

    assert LabelSet((*rest, first)).digest() == base.digest()  # label order does not change any score
    assert LabelSet(base.labels, name="other", metadata=(("description", "x"),)).digest() == base.digest()
    changed = [
        with_first(Label(first.name, (*first.prompts[:-1], first.prompts[-1] + " "), None)),
        with_first(Label(first.name, first.prompts[::-1], None)),
        with_first(Label(first.name, first.prompts[:-1], None)),
        with_first(Label(first.name, first.prompts, 0.5)),
        with_first(Label("healthy", first.prompts, None)),
        LabelSet(tuple(rest)),
    ]
    digests = {label_set.digest() for label_set in changed}
    assert len(digests) == len(changed) and base.digest() not in digests
    assert first.digest() != Label(first.name, first.prompts, 0.5).digest()
    # the same labels written in a file give the same digest as the built-in
    text = "".join(f"[{x.name}]\nprompts = {list(x.prompts)!r}\n".replace("'", '"') for x in base.labels)
    assert load_label_set(write(tmp_path, text)).digest() == base.digest()


def test_summary_flags_nothing_found_and_names_the_uncertain_label() -> None:
    import numpy as np
    from medsearch.labels.zeroshot import summarize

    labels = load_label_set("cxr-findings")
    nothing = summarize(labels, np.zeros(len(CXR)), 1, "/x.png")  # ~0 on every label, normal included
    assert nothing.present == [] and nothing.needs_review
    assert nothing.review_reason == "nothing found: every label scored below its threshold"
    probs = np.zeros(len(CXR))
    probs[CXR.index("pneumonia")] = 0.3
    unsure = summarize(labels, probs, 1, "/x.png")
    assert unsure.needs_review and unsure.review_reason == "uncertain: pneumonia"
    probs[CXR.index("normal")] = 0.9
    found = summarize(labels, probs, 1, "/x.png")
    assert found.present == ["normal"] and not found.needs_review and found.review_reason is None
