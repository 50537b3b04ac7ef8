"""One description of a query, for every door.

A ``QuerySpec`` is frozen and typed: what is asked (a text and composed parts, or a target for similar
cases), where (metadata filters), how strict (thresholds), what is ranked (images, or series / studies and
how they are scored), in what order and which page. ``OPTIONS`` describes each option once (its name, type,
help, limits and which kinds of query take it); the CLI options, the HTTP parameters, the upload form and
the remote client are generated from it (``medsearch.cli.query_options``, ``medsearch.server.query_params``,
``QuerySpec.from_strings`` and ``QuerySpec.http_params``), so a new option is one ``Option`` here plus its
use in ``validate`` or the query service.

``validate`` needs no store and gives every door the same message for the same mistake; the checks that
need the store (an unknown ``group_by`` column, a bad ``where`` expression) are the query service's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from medsearch.errors import InvalidQuery, not_utf8
from medsearch.query.compose import Part, parse_part

Kind = Literal["search", "similar"]
UNITS = ("image", "series", "study")
TEXT_METHODS = ("mean", "max", "top3")
SIMILAR_METHODS = ("mean", "max", "top3", "late")
SORTS = ("score", "date")
REPORT_POLARITIES = ("positive", "negative", "uncertain", "any")
MAX_K = 1000
MAX_OFFSET = 100_000
MAX_PARTS = 20
MAX_TEXT = 2000
MAX_WHERE = 4000


@dataclass(frozen=True)
class Option:
    """One query option as every door shows it. ``type`` is the value's type (``tuple`` options repeat);
    ``kinds`` the queries that take it; ``flag`` the CLI's name (None: the CLI gives it as an argument)."""

    name: str
    type: type
    help: str
    kinds: tuple[Kind, ...] = ("search", "similar")
    flag: tuple[str, ...] | None = ()

    @property
    def flags(self) -> tuple[str, ...]:
        return self.flag or ("--" + self.name.replace("_", "-"),)


OPTIONS: tuple[Option, ...] = (
    Option("text", str, "What to look for, e.g. 'left pleural effusion'.", ("search",), None),
    Option("target", str, "An image file (indexed or not), an image id, or a series/study UID.", ("similar",), None),
    Option("k", int, f"How many results (1-{MAX_K}).", flag=("-k", "--k")),
    Option("offset", int, "Skip this many results (paging)."),
    Option("where", tuple, "Metadata filter, e.g. \"modality in ('CR','DX') and study_date >= '2019-01-01'\"; "
                           "repeatable (all must hold)."),
    Option("min_score", float, "Only results with cosine >= this (-1 to 1)."),
    Option("min_prob", float, "Only results whose model probability >= this (0 to 1; a plain text query).",
           ("search",)),
    Option("group_by", str, "Best image per study, series, patient or any metadata column."),
    Option("like", tuple, "Another positive part: TEXT or id:N (image:PATH on the CLI), optionally @WEIGHT.",
           ("search",)),
    Option("unlike", tuple, "A negative part, same form.", ("search",)),
    Option("unit", str, "Rank images, or one row per series or study: image, series, study."),
    Option("unit_method", str, "How a series/study is scored: max (best slice; text default), top3, mean, "
                               "late (late interaction; similar default)."),
    Option("sort", str, "score, or date (newest study first; needs min_score or min_prob)."),
    Option("include_self", bool, "Keep the query image itself (an indexed file or id) among the results.",
           ("similar",)),
    Option("report", str, "Only images whose study's report affirms a mention holding these words, e.g. "
                          "'pneumothorax' (negated mentions do not count; see report_polarity)."),
    Option("report_polarity", str, "Which report mentions count: positive (default), negative, uncertain, any."),
)


@dataclass(frozen=True)
class QuerySpec:
    """A query, as every door asks it. ``kind`` is ``search`` (a text and/or ``like``/``unlike`` parts) or
    ``similar`` (closest to ``target``: an image id, a file, or a series/study UID, or to a given vector).
    Build one with the constructor or ``from_strings`` and call ``validate``."""

    kind: Kind = "search"
    text: str | None = None
    target: str | None = None
    k: int = 10
    offset: int = 0
    where: tuple[str, ...] = ()
    min_score: float | None = None
    min_prob: float | None = None
    group_by: str | None = None
    like: tuple[str, ...] = ()
    unlike: tuple[str, ...] = ()
    unit: str = "image"
    unit_method: str | None = None
    sort: str = "score"
    include_self: bool = False
    report: str | None = None
    report_polarity: str | None = None

    def __post_init__(self) -> None:
        for name in ("where", "like", "unlike"):  # lists from a caller become tuples: the spec stays frozen
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value or ()))

    @property
    def is_unit(self) -> bool:
        """Whether series or studies are ranked instead of images."""
        return self.unit != "image"

    @property
    def threshold_given(self) -> bool:
        return self.min_score is not None or self.min_prob is not None

    def with_changes(self, **changes: Any) -> QuerySpec:
        return replace(self, **changes)

    def validate(self) -> QuerySpec:
        """This spec, checked without the store: bounds, names, combinations and the query parts. Returns
        self. Raises InvalidQuery with the same message whatever door the spec came through."""
        _check_bounds(self)
        _check_choices(self)
        _check_combinations(self)
        if self.text is not None or self.like or self.unlike:
            self.parts()  # a search without parts is refused where it needs them (``parts``); a count may go without
        return self

    def parts(self) -> list[Part]:
        """The composed parts of a search: the text and ``like`` parts positive, ``unlike`` negative (none
        for similar). Raises InvalidQuery for an empty text, no part at all or a malformed part."""
        if self.kind == "similar":
            return []
        if self.text is not None and not self.text.strip():
            raise InvalidQuery("the search text is empty")
        for given in (self.text or "", *self.like, *self.unlike):
            check_utf8(given)
        parts = ([parse_part(self.text)] if self.text is not None else []) + [parse_part(p) for p in self.like]
        parts += [parse_part(p, sign=-1.0) for p in self.unlike]
        if not parts:
            raise InvalidQuery("the search text is empty: give a text or like parts")
        return parts

    @classmethod
    def from_strings(cls, kind: Kind, values: Mapping[str, Iterable[str]]) -> QuerySpec:
        """A spec from text values (HTTP query parameters, form fields: each name with its given values),
        converted as the options' types say. Raises InvalidQuery for an unknown name, a value given twice
        where one is taken, or a value of the wrong type."""
        known = {option.name: option for option in OPTIONS if kind in option.kinds}
        given: dict[str, Any] = {}
        for name, texts in values.items():
            option = known.get(name)
            if option is None:
                raise InvalidQuery(f"unknown query option {name!r}; known: {', '.join(known)}")
            given[name] = _converted(option, list(texts))
        return cls(kind=kind, **given)

    def http_params(self) -> dict[str, Any]:
        """The options that differ from the defaults, as the HTTP API's query parameters (repeatable ones
        as lists; the text as ``q``; the target is the URL's)."""
        defaults = QuerySpec()
        params: dict[str, Any] = {}
        for spec_field in fields(self):
            name, value = spec_field.name, getattr(self, spec_field.name)
            if name in ("kind", "target") or value == getattr(defaults, name):
                continue
            params["q" if name == "text" else name] = _as_param(name, value)
        return params


def check_utf8(text: str) -> None:
    """Raise InvalidQuery for text holding lone surrogates (bytes that were not UTF-8 on a command line)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise not_utf8() from None


def as_bool(name: str, text: str) -> bool:
    """``text`` (true/false, 1/0, yes/no, any case) as a bool. Raises InvalidQuery naming ``name``."""
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise InvalidQuery(f"{name} takes true or false, not {text!r}")
    return text.lower() in ("true", "1", "yes")


def _check_bounds(spec: QuerySpec) -> None:
    if not 1 <= spec.k <= MAX_K:
        raise InvalidQuery(f"k must be between 1 and {MAX_K}, not {spec.k}")
    if not 0 <= spec.offset <= MAX_OFFSET:
        raise InvalidQuery(f"offset must be between 0 and {MAX_OFFSET}, not {spec.offset}")
    if spec.min_score is not None and not -1.0 <= spec.min_score <= 1.0:
        raise InvalidQuery(f"min_score is a cosine between -1 and 1, not {spec.min_score}")
    if spec.min_prob is not None and not 0.0 < spec.min_prob < 1.0:
        raise InvalidQuery(f"min_prob must be strictly between 0 and 1, not {spec.min_prob}")
    if len(spec.like) + len(spec.unlike) > MAX_PARTS:
        raise InvalidQuery(f"at most {MAX_PARTS} like and unlike parts")
    if spec.text is not None and len(spec.text) > MAX_TEXT:
        raise InvalidQuery(f"the search text is longer than {MAX_TEXT} characters")
    if sum(len(w) for w in spec.where) > MAX_WHERE:
        raise InvalidQuery(f"the where expressions are longer than {MAX_WHERE} characters")
    if spec.report is not None and len(spec.report) > MAX_TEXT:
        raise InvalidQuery(f"the report search is longer than {MAX_TEXT} characters")


def _check_choices(spec: QuerySpec) -> None:
    if spec.unit not in UNITS:
        raise InvalidQuery(f"unknown unit {spec.unit!r}; expected one of {', '.join(UNITS)}")
    methods = SIMILAR_METHODS if spec.kind == "similar" else TEXT_METHODS
    if spec.unit_method is not None and spec.unit_method not in methods:
        raise InvalidQuery(f"unknown unit method {spec.unit_method!r} for {spec.kind}; expected one of "
                           f"{', '.join(methods)}")
    if spec.sort not in SORTS:
        raise InvalidQuery(f"unknown sort {spec.sort!r}; expected one of {', '.join(SORTS)}")
    if spec.report_polarity is not None and spec.report_polarity not in REPORT_POLARITIES:
        raise InvalidQuery(f"unknown report polarity {spec.report_polarity!r}; expected one of "
                           f"{', '.join(REPORT_POLARITIES)}")


def _check_combinations(spec: QuerySpec) -> None:
    """The combinations no door may take (each one's message says what to do instead)."""
    if spec.kind == "similar" and (spec.target is None or not str(spec.target).strip()):
        raise InvalidQuery("similar needs a target: an image file, an image id or a series/study UID")
    if spec.kind == "similar" and (spec.text is not None or spec.like or spec.unlike or spec.min_prob is not None):
        raise InvalidQuery("similar takes a target, not a text, like/unlike parts or min_prob")
    if spec.kind == "search" and (spec.target is not None or spec.include_self):
        raise InvalidQuery("a search takes a text or like parts, not a target or include_self")
    if spec.is_unit and spec.group_by is not None:
        raise InvalidQuery("unit= gives one row per series or study already: leave out group_by")
    if spec.is_unit and spec.include_self:
        raise InvalidQuery("include_self keeps the query image; with unit= the query's own series or study is "
                           "always left out: leave out include_self, or rank images (unit=image)")
    if spec.unit_method is not None and not spec.is_unit:
        raise InvalidQuery("unit_method scores series or studies: give unit=series or unit=study with it")
    if spec.sort == "date" and not spec.threshold_given:
        raise InvalidQuery("sort=date orders every result above a threshold: give min_score or min_prob too")
    plain_text = spec.text is not None and not spec.like and not spec.unlike
    if spec.min_prob is not None and not plain_text:
        raise InvalidQuery("min_prob needs a plain text query: the model's probability is per text")
    if spec.group_by is not None and not spec.group_by.strip():
        raise InvalidQuery("group_by is empty: name a column, or leave it out")
    if spec.report is not None and not spec.report.strip():
        raise InvalidQuery("the report search is empty: give words, or leave it out")
    if spec.report_polarity is not None and spec.report is None:
        raise InvalidQuery("report_polarity says which report mentions count: give report words with it")


def _converted(option: Option, texts: list[str]) -> Any:
    """``texts`` (one or more given values) as the option's type. Raises InvalidQuery."""
    if option.type is tuple:
        return tuple(text for text in texts if text.strip())
    if len(texts) != 1:
        raise InvalidQuery(f"{option.name} is given {len(texts)} times; give it once")
    text = texts[0]
    if option.type is str:
        return text if text != "" or option.name == "text" else None
    if option.type is bool:
        return as_bool(option.name, text)
    try:
        value = option.type(text)
    except ValueError:
        noun = "a whole number" if option.type is int else "a number"
        raise InvalidQuery(f"{option.name} must be {noun}, not {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidQuery(f"{option.name} must be a finite number, not {text!r}")
    return value


def _as_param(name: str, value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
