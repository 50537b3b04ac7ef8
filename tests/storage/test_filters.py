"""The --where language against a real SQLite file: every operator, precedence, quoting, dates, fields,
missing-value semantics, errors with positions; and property tests that the SQL agrees with a pure-Python
reading of the same AST, that ``render`` and ``parse`` round-trip, and that no text crashes the parser."""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from medsearch.errors import InvalidQuery
from medsearch.storage.filters import (
    And,
    Compare,
    Expr,
    InList,
    IsNull,
    Like,
    Not,
    Or,
    compile_filter,
    field_names,
    parse,
    referenced_names,
    render,
)
from medsearch.storage.models import METADATA_COLUMNS, Base, Image, ImageField
from sqlalchemy import Engine, create_engine, delete, event, insert, inspect, select
from sqlalchemy.orm import Session

Row = dict[str, object]
FIELDS = {"effusion", "pneumothorax", "site", "seen", "my col"}


def image(id: int, **values: object) -> dict[str, object]:
    """An ``images`` row with dummies in the non-null columns a filter does not look at."""
    base = {"path": f"/data/{id}.dcm", "size": 1, "mtime_ns": 0, "content_hash": "h", "embedding": b""}
    unset = dict.fromkeys(METADATA_COLUMNS)  # executemany wants the same keys in every row
    return {**unset, "id": id, **base, "generation": 1, "file_format": "dicom", "frame_number": 0, **values}


def field_row(image_id: int, name: str, kind: str, value: object) -> dict[str, object]:
    """An ``image_fields`` row as the store writes it: bools in ``number`` as 0/1."""
    column = {"number": "number", "bool": "number", "text": "text", "date": "date"}[kind]
    value = float(value) if kind == "bool" else value  # type: ignore[arg-type]
    row = {"image_id": image_id, "name": name, "kind": kind, "number": None, "text": None, "date": None}
    return {**row, column: value, "source": "test"}


def load(engine: Engine, images: list[dict[str, object]], fields: list[dict[str, object]]) -> None:
    with engine.begin() as connection:
        connection.execute(delete(ImageField))
        connection.execute(delete(Image))
        if images:
            connection.execute(insert(Image), images)
        if fields:
            connection.execute(insert(ImageField), fields)


def new_engine(folder: object) -> Engine:
    engine = create_engine(f"sqlite:///{folder}/store.db")
    event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA synchronous = OFF"))
    Base.metadata.create_all(engine)
    return engine


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = new_engine(tmp_path_factory.mktemp("filters"))
    images = [
        image(1, modality="CR", study_date=dt.date(2018, 6, 1), patient_age=45.0, body_part="CHEST",
              series_description="Chest PA", width=512, burned_in_annotation=False),
        image(2, modality="DX", study_date=dt.date(2019, 3, 15), patient_age=12.0,
              series_description="CHEST LAT", width=1024, burned_in_annotation=True),
        image(3, modality="MR", study_date=dt.date(2020, 1, 1), body_part="HEAD",
              series_description="brain axial"),
        image(4, patient_age=70.5, body_part="chest", width=256),
    ]  # fmt: skip
    fields = [
        field_row(1, "effusion", "number", 0.8),
        field_row(1, "pneumothorax", "bool", True),
        field_row(1, "site", "text", "Boston"),
        field_row(1, "seen", "date", dt.date(2020, 1, 5)),
        field_row(1, "my col", "text", "a'b"),
        field_row(2, "effusion", "number", 0.2),
        field_row(2, "pneumothorax", "bool", False),
        field_row(2, "site", "text", "o'Hare"),
        field_row(4, "effusion", "number", 0.5),
    ]
    load(engine, images, fields)
    yield engine
    engine.dispose()


def matching(engine: Engine, where: object, known: set[str] = FIELDS) -> set[int]:
    with Session(engine) as session:
        return set(session.scalars(select(Image.id).where(compile_filter(where, known))))  # type: ignore[arg-type]


CASES = [
    # comparisons on typed columns (a null column makes every comparison false)
    ("modality = 'CR'", {1}),
    ("modality != 'CR'", {2, 3}),
    ("modality <> 'CR'", {2, 3}),
    ("patient_age < 45", {2}),
    ("patient_age <= 45", {1, 2}),
    ("patient_age > 45", {4}),
    ("patient_age >= 45", {1, 4}),
    ("patient_age >= '45'", {1, 4}),
    ("patient_age > -1", {1, 2, 4}),
    ("width > 600.5", {2}),
    ("width = 512", {1}),
    ("modality in ('CR','DX')", {1, 2}),
    ("modality not in ('CR', 'DX')", {3}),
    ("body_part is null", {2}),
    ("body_part is not null", {1, 3, 4}),
    ("series_description like '%chest%'", {1, 2}),
    ("series_description not like '%chest%'", {3}),
    ("series_description like 'chest _A'", {1}),
    ("burned_in_annotation = true", {2}),
    ("burned_in_annotation = false", {1}),
    ("burned_in_annotation != true", {1}),
    ("id in (1, 3)", {1, 3}),
    ("path like '%/2.dcm'", {2}),
    # dates
    ("study_date >= '2019-01-01'", {2, 3}),
    ("study_date = '2020-01-01'", {3}),
    ("study_date < '2019-03-15'", {1}),
    ("study_date in ('2018-06-01', '2020-01-01')", {1, 3}),
    ("indexed_at >= '2000-01-01'", {1, 2, 3, 4}),
    ("indexed_at < '2000-01-01T10:00:00+02:00'", set()),
    # keywords and typed column names are case-insensitive
    ("MODALITY IN ('CR') AND NOT Body_Part IS NULL", {1}),
    # precedence: not > and > or
    ("modality = 'DX' or modality = 'CR' and patient_age > 50", {2}),
    ("(modality = 'DX' or modality = 'CR') and patient_age > 50", set()),
    ("not modality = 'CR' and patient_age > 40", {4}),
    ("not (modality = 'CR' and patient_age > 40)", {2, 3, 4}),
    ("not not modality = 'CR'", {1}),
    ("modality = 'MR' or (modality = 'DX' or width = 256) and not patient_age < 20", {3, 4}),
    # quoting
    ("site = 'o''Hare'", {2}),
    ("\"my col\" = 'a''b'", {1}),
    # fields: the literal's type picks the value column
    ("effusion > 0.5", {1}),
    ("effusion >= 0.5", {1, 4}),
    ("pneumothorax = true", {1}),
    ("pneumothorax = false", {2}),
    ("pneumothorax = 1", {1}),
    ("seen >= '2020-01-01'", {1}),
    ("seen = '2020-01-05'", {1}),
    ("site like 'bos%'", {1}),
    ("site not like 'bos%'", {2}),
    ("effusion in (0.2, 0.5)", {2, 4}),
    ("effusion not in (0.2)", {1, 4}),
    ("effusion is null", {3}),
    ("effusion is not null", {1, 2, 4}),
    ("site > 1", set()),
    ("effusion = 'x'", set()),
    # missing values: every comparison is false, so `not` includes them
    ("not (effusion > 0.5)", {2, 3, 4}),
    ("effusion != 0.8", {2, 4}),
    ("not (patient_age > 18)", {2, 3}),
    ("patient_age != 45", {2, 4}),
    ("site != 'Boston'", {2}),
    ("not (site = 'Boston')", {2, 3, 4}),
]


@pytest.mark.parametrize(("where", "expected"), CASES)
def test_filter_selects(store: Engine, where: str, expected: set[int]) -> None:
    assert matching(store, where) == expected


def test_several_wheres_are_joined_with_and(store: Engine) -> None:
    assert matching(store, ["modality in ('CR','DX')", "patient_age > 20"]) == {1}
    assert matching(store, [parse("effusion > 0.1"), "width < 1000"]) == {1, 4}
    assert matching(store, []) == {1, 2, 3, 4}


def test_values_are_bound_parameters(store: Engine) -> None:
    sql = str(compile_filter("modality = 'xyzzy' or effusion > 123.5", FIELDS).compile())
    assert "xyzzy" not in sql and "123.5" not in sql
    hostile = "modality = '''; drop table images; --' or site = '1'' or ''1''=''1'"
    assert matching(store, hostile) == set()
    assert "images" in inspect(store).get_table_names()
    assert len(matching(store, "id > 0")) == 4


ERRORS = [
    ("modality in ('CR' 'DX')", 18, "expected ',' or ')', found 'DX'"),
    ("modality = 'CR", 11, "unterminated string"),
    ("modality = ", 11, "expected a value"),
    ("(modality = 'CR'", 16, "expected ')', found the end"),
    ("modality = 'CR')", 15, "expected 'and', 'or' or the end"),
    ("modalty = 'CR'", 0, "unknown column 'modalty' (did you mean 'modality'"),
    ("zzzzqqq = 1", 0, "known: body_part"),
    ("patient_age > 'old'", 14, "patient_age is a number column; 'old' is not a number"),
    ("width like '5%'", 0, "'like' needs a text column"),
    ("modality = 5", 11, "modality is a text column"),
    ("study_date > '2019/01/01'", 13, "expected a date 'YYYY-MM-DD'"),
    ("study_date > '2019-02-30'", 13, "expected a date"),
    ("modality = 'CR' and study_date in ('2019-01-01', 3)", 49, "expected a date"),
    ("burned_in_annotation > true", 0, "= or !="),
    ("burned_in_annotation = 1", 23, "true/false"),
    ("effusion > true", 0, "true and false can only be compared with = or !="),
    ("modality = null", 11, "write 'is null'"),
    ("   ", 0, "empty filter expression"),
    ("modality == 'CR'", 10, "expected a value"),
    ("modality like 5", 14, "a quoted pattern"),
    ("modality is 'CR'", 12, "expected 'null'"),
    ("modality not = 'CR'", 13, "expected 'in' or 'like'"),
    ("modality 'CR'", 9, "expected an operator"),
    ("= 'CR'", 0, "expected a column name"),
    ('"" = 1', 0, "expected a column name"),
    ("modality = 'CR' $", 16, "unexpected character '$'"),
    ("effusion > 1e999", 11, "number out of range"),
    ("(" * 70 + "effusion = 1" + ")" * 70, 64, "nested deeper than 64"),
    (" or ".join(["effusion = 1"] * 300), 256 * 16, "more than 256 conditions"),
]


@pytest.mark.parametrize(("where", "position", "message"), ERRORS)
def test_errors_point_at_the_mistake(where: str, position: int, message: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        compile_filter(where, FIELDS)
    error = caught.value
    assert error.position == position
    first, shown, caret = str(error).split("\n")
    assert message in first and first.endswith(f"at column {position + 1}")
    assert shown == "  " + where and caret == "  " + " " * position + "^"


def test_an_ast_without_text_still_says_where() -> None:
    with pytest.raises(InvalidQuery, match=r"^modality is a text column") as caught:
        compile_filter(Compare("modality", "=", 5, pos=0, value_pos=11), FIELDS)
    assert caught.value.position == 11


def test_referenced_names_and_field_names(store: Engine) -> None:
    where = "modality = 'CR' and (not effusion > 1 or \"my col\" like 'a%') and site is null"
    assert referenced_names(where) == {"modality", "effusion", "my col", "site"}
    assert referenced_names(parse("a = 1")) == {"a"}
    with Session(store) as session:
        assert field_names(session) == FIELDS


def test_parse_builds_the_tree() -> None:
    assert parse("a = 1 or b = 2 and not c is null") == Or(
        (Compare("a", "=", 1), And((Compare("b", "=", 2), Not(IsNull("c")))))
    )
    assert parse("(a in ('x', -2.5e1)) and b not like 'y'") == And(
        (InList("a", ("x", -25.0)), Like("b", "y", negated=True))
    )
    assert parse('"and" <> TRUE') == Compare("and", "!=", True)
    assert render(parse("(a = 1 and b = 2) and c = 3")) == "(a = 1 and b = 2) and c = 3"


# ---- property tests: the SQL means what a plain reading of the AST means --------------------------------

TYPED_KINDS = {
    "id": "number", "path": "text", "modality": "text", "patient_age": "number", "width": "number",
    "study_date": "date", "burned_in_annotation": "bool",
}  # fmt: skip
FIELD_KINDS = {
    "effusion": "number",
    "flag": "bool",
    "seen": "date",
    "grade": "any",
    "my col": "text",
    "Null": "number",
}
PY_OPS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

texts = st.sampled_from(["CR", "DX", "cr", "Chest PA", "chest", "a'b", "", "2018-01-03"]) | st.text(
    alphabet="aAbB'%_ -\\", max_size=3
)
numbers = st.sampled_from([0, 1, -1, 0.5, 18, 45.0]) | st.integers(-3, 3) | st.floats(-3, 3, width=16)
days = st.dates(dt.date(2018, 1, 1), dt.date(2018, 1, 6))
LITERALS = {
    "text": texts,
    "number": numbers,
    "date": days.map(dt.date.isoformat),
    "bool": st.booleans(),
    "field": texts | numbers | days.map(dt.date.isoformat) | st.booleans(),
}
VALUES = {"text": texts, "number": numbers, "date": days, "bool": st.booleans()}


@st.composite
def predicates(draw: st.DrawFn) -> Expr:
    name = draw(st.sampled_from([*TYPED_KINDS, *FIELD_KINDS]))
    kind = TYPED_KINDS.get(name, "field")
    literal, negated = LITERALS[kind], draw(st.booleans())
    if kind == "field" and FIELD_KINDS[name] != "any" and draw(st.integers(0, 3)):
        literal = LITERALS[FIELD_KINDS[name]]  # mostly a literal that meets the field, sometimes any
    form = draw(st.sampled_from(["compare", "compare", "in", "null", "like"]))
    if form == "null":
        return IsNull(name, negated)
    if form == "like" and kind in ("text", "field"):
        return Like(name, draw(st.text(alphabet="aAb%_'", max_size=4)), negated)
    if form == "in":
        return InList(name, tuple(draw(st.lists(literal, min_size=1, max_size=3))), negated)
    value = draw(literal)
    ordered = kind != "bool" and not isinstance(value, bool)
    return Compare(name, draw(st.sampled_from(list(PY_OPS) if ordered else ["=", "!="])), value)


def _group(kind: type[And] | type[Or]) -> Callable[[st.SearchStrategy[Expr]], st.SearchStrategy[Expr]]:
    return lambda children: st.lists(children, min_size=2, max_size=3).map(lambda xs: kind(tuple(xs)))


expressions = st.recursive(
    predicates(),
    lambda c: c.map(Not) | _group(And)(c) | _group(Or)(c),
    max_leaves=8,  # type: ignore[operator]
)


@st.composite
def datasets(draw: st.DrawFn) -> tuple[list[Row], list[Row], list[dict[str, Any]]]:
    """(images rows, image_fields rows, the same rows as the oracle's mappings)."""
    images: list[Row] = []
    fields: list[Row] = []
    rows: list[dict[str, Any]] = []
    for id in range(1, draw(st.integers(0, 7)) + 1):
        typed = {name: draw(st.none() | VALUES[kind]) for name, kind in TYPED_KINDS.items() if name != "id"}
        typed["path"] = f"/data/{draw(texts)}/{id}.dcm"
        present: dict[str, tuple[str, object]] = {}
        for name, kind in FIELD_KINDS.items():
            kind = draw(st.sampled_from(list(VALUES))) if kind == "any" else kind
            if draw(st.integers(0, 3)):
                present[name] = (kind, draw(VALUES[kind]))
                fields.append(field_row(id, name, kind, present[name][1]))
        images.append(image(id, **typed))
        rows.append({**typed, "id": id, "fields": present})
    return images, fields, rows


def _value(row: Mapping[str, Any], name: str) -> tuple[str, Any] | None:
    if name in TYPED_KINDS:
        return None if row[name] is None else (TYPED_KINDS[name], row[name])
    return row["fields"].get(name)  # type: ignore[attr-defined, no-any-return]


def _compare(kind: str, stored: Any, op: str, literal: Any) -> bool:
    """``stored op literal`` where the two can meet; False where they cannot."""
    if kind in ("number", "bool") and not isinstance(literal, str):
        return PY_OPS[op](float(stored), float(literal))  # type: ignore[arg-type]
    if kind == "text" and isinstance(literal, str):
        return PY_OPS[op](stored, literal)
    if kind == "date" and isinstance(literal, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", literal):
        return PY_OPS[op](stored, dt.date.fromisoformat(literal))
    return False


def _like(text: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(regex, text.lower(), re.DOTALL) is not None


def evaluate(expr: Expr, row: Mapping[str, Any]) -> bool:
    """The documented meaning, read plainly: absent values make every comparison false."""
    if isinstance(expr, And | Or):
        return (all if isinstance(expr, And) else any)(evaluate(item, row) for item in expr.items)
    if isinstance(expr, Not):
        return not evaluate(expr.operand, row)
    found = _value(row, expr.name)
    if isinstance(expr, IsNull):
        return (found is not None) == expr.negated
    if found is None:
        return False
    kind, stored = found
    if isinstance(expr, Compare):
        return _compare(kind, stored, expr.op, expr.value)
    if isinstance(expr, InList):
        if expr.negated:
            return all(_compare(kind, stored, "!=", value) for value in expr.values)
        return any(_compare(kind, stored, "=", value) for value in expr.values)
    return kind == "text" and _like(stored, expr.pattern) != expr.negated  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = new_engine(tmp_path_factory.mktemp("scratch"))
    yield engine
    engine.dispose()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=datasets(), exprs=st.lists(expressions, min_size=1, max_size=4))
def test_sql_agrees_with_python(scratch: Engine, data: tuple, exprs: list[Expr]) -> None:
    images, fields, rows = data
    load(scratch, images, fields)
    for expr in exprs:
        expected = {row["id"] for row in rows if evaluate(expr, row)}
        assert matching(scratch, expr, set(FIELD_KINDS)) == expected, render(expr)


@settings(max_examples=200, deadline=None)
@given(expressions)
def test_render_round_trips(expr: Expr) -> None:
    text = render(expr)
    assert parse(text) == expr
    assert render(parse(text)) == text


TOKENS = [
    "a", "x.y", '"q q"', "'s'", "''''", "1", "-2.5", "1e3", "(", ")", ",", "=", "<>", "<=", "!", "and", "or",
    "not", "in", "is", "null", "like", "true", "FALSE", "'", '"', "'2019-01-01'", "modality", "width",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40) | st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join))
def test_any_text_parses_or_raises_invalid_query(text: str) -> None:
    try:
        expr = parse(text)
        compile_filter(text, {"a", "x.y", "q q"})
    except InvalidQuery as error:
        assert error.position is not None and 0 <= error.position <= len(text)
        return
    assert parse(render(expr)) == expr
