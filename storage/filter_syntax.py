"""The ``--where`` syntax: a hand-written tokenizer and recursive-descent parser to a small AST of frozen
dataclasses, and ``render``, its inverse. No database here: ``medsearch.storage.filters`` gives the AST a meaning.

Grammar (keywords are case-insensitive)::

    or_expr   := and_expr ('or' and_expr)*
    and_expr  := not_expr ('and' not_expr)*
    not_expr  := 'not' not_expr | '(' or_expr ')' | predicate
    predicate := name ('=' | '!=' | '<>' | '<' | '<=' | '>' | '>=') literal
               | name ['not'] 'in' '(' literal (',' literal)* ')'
               | name 'is' ['not'] 'null'
               | name ['not'] 'like' string          -- case-insensitive; % and _ are the wildcards
    name      := [A-Za-z_][A-Za-z0-9_.]*  |  "any text"  ("" for a double quote)
    literal   := 'text' ('' for a quote) | number (int or float, may be negative) | true | false

``a and b and c`` is one ``And`` of three items; ``(a and b) and c`` nests, so ``render`` keeps the
parentheses and ``parse(render(e)) == e``. ``<>`` is read as ``!=``. Positions (0-based offsets) ride on the
nodes for error messages and take no part in equality.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from medsearch.errors import InvalidQuery

Value = str | int | float | bool
KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "like", "true", "false"})
MAX_DEPTH = 64  # nested parentheses and 'not's
MAX_PREDICATES = 256
_INT64 = 2**63 - 1
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TOKEN = re.compile(
    r"(?P<ws>\s+)|(?P<number>" + _NUMBER.pattern + r")|(?P<name>" + _NAME.pattern + r")"
    r"|(?P<string>'(?:[^']|'')*')|(?P<qname>\"(?:[^\"]|\"\")*\")|(?P<op><=|>=|<>|!=|=|<|>)|(?P<punct>[(),])"
)


@dataclass(frozen=True)
class Compare:
    """``name op value``; ``op`` is one of = != < <= > >=."""

    name: str
    op: str
    value: Value
    pos: int = field(default=0, compare=False, repr=False)
    value_pos: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class InList:
    """``name [not] in (values...)``."""

    name: str
    values: tuple[Value, ...]
    negated: bool = False
    pos: int = field(default=0, compare=False, repr=False)
    value_pos: tuple[int, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class IsNull:
    """``name is [not] null``."""

    name: str
    negated: bool = False
    pos: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class Like:
    """``name [not] like 'pattern'``."""

    name: str
    pattern: str
    negated: bool = False
    pos: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class Not:
    """``not operand``."""

    operand: Expr


@dataclass(frozen=True)
class And:
    """``items[0] and items[1] and ...`` (two or more)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """``items[0] or items[1] or ...`` (two or more)."""

    items: tuple[Expr, ...]


Predicate = Compare | InList | IsNull | Like
Expr = Predicate | Not | And | Or


def syntax_error(message: str, text: str | None, pos: int) -> InvalidQuery:
    """``message at column N`` with the expression and a caret under the mistake (``pos`` is 0-based)."""
    if text is None:
        return InvalidQuery(message, pos)
    shown = re.sub(r"\s", " ", text)
    return InvalidQuery(f"{message} at column {pos + 1}\n  {shown}\n  {' ' * pos}^", pos)


@dataclass(frozen=True)
class _Token:
    kind: str  # name qname string number op punct kw end
    text: str
    pos: int
    value: Value | None = None


def read_number(text: str) -> int | float | None:
    """The number ``text`` spells (int if it has no '.' or exponent), or None if it is not one / too big."""
    if not _NUMBER.fullmatch(text):
        return None
    if re.fullmatch(r"-?\d+", text):
        value = int(text)
        return value if abs(value) <= _INT64 else None
    number = float(text)
    return number if math.isfinite(number) else None


def _tokenize(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            what = "unterminated string" if text[pos] in "'\"" else f"unexpected character {text[pos]!r}"
            raise syntax_error(what, text, pos)
        kind, raw = match.lastgroup or "", match.group()
        if kind == "number":
            value = read_number(raw)
            if value is None:
                raise syntax_error("number out of range", text, pos)
            tokens.append(_Token(kind, raw, pos, value))
        elif kind == "name" and raw.lower() in KEYWORDS:
            tokens.append(_Token("kw", raw.lower(), pos))
        elif kind in ("string", "qname"):
            quote = raw[0]
            tokens.append(_Token(kind, raw, pos, raw[1:-1].replace(quote * 2, quote)))
        elif kind != "ws":
            tokens.append(_Token(kind, "!=" if raw == "<>" else raw, pos, raw))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.tokens, self.i = text, _tokenize(text), 0
        self.depth = self.predicates = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += min(1, len(self.tokens) - 1 - self.i)
        return token

    def accept(self, kind: str, text: str) -> bool:
        if self.peek().kind == kind and self.peek().text == text:
            self.take()
            return True
        return False

    def fail(self, expected: str, token: _Token | None = None) -> InvalidQuery:
        token = token or self.peek()
        quoted = token.kind in ("string", "qname")
        found = "the end" if token.kind == "end" else token.text if quoted else repr(token.text)
        return syntax_error(f"expected {expected}, found {found}", self.text, token.pos)

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise syntax_error(f"expression nested deeper than {MAX_DEPTH}", self.text, self.peek().pos)

    def parse(self) -> Expr:
        if not self.text.strip():
            raise syntax_error("empty filter expression", self.text, 0)
        expr = self.or_expr()
        if self.peek().kind != "end":
            raise self.fail("'and', 'or' or the end")
        return expr

    def or_expr(self) -> Expr:
        items = [self.and_expr()]
        while self.accept("kw", "or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Expr:
        items = [self.not_expr()]
        while self.accept("kw", "and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Expr:
        if (self.peek().kind, self.peek().text) in (("kw", "not"), ("punct", "(")):
            self.nest()
            if self.accept("kw", "not"):
                expr: Expr = Not(self.not_expr())
            else:
                self.take()
                expr = self.or_expr()
                if not self.accept("punct", ")"):
                    raise self.fail("')'")
            self.depth -= 1
            return expr
        return self.predicate()

    def predicate(self) -> Predicate:
        token = self.take()
        if token.kind not in ("name", "qname") or not token.value:
            raise self.fail("a column name, 'not' or '('", token)
        self.predicates += 1
        if self.predicates > MAX_PREDICATES:
            raise syntax_error(f"more than {MAX_PREDICATES} conditions", self.text, token.pos)
        name, pos = str(token.value), token.pos
        if self.peek().kind == "op":
            op = self.take().text
            value_pos = self.peek().pos
            return Compare(name, op, self.literal(), pos, value_pos)
        negated = self.accept("kw", "not")
        if self.accept("kw", "in"):
            return self.in_list(name, negated, pos)
        if self.accept("kw", "like"):
            token = self.take()
            if token.kind != "string":
                raise self.fail("a quoted pattern after 'like'", token)
            return Like(name, str(token.value), negated, pos)
        if not negated and self.accept("kw", "is"):
            is_not = self.accept("kw", "not")
            if not self.accept("kw", "null"):
                raise self.fail("'null'")
            return IsNull(name, is_not, pos)
        raise self.fail("'in' or 'like'" if negated else "an operator (= != < <= > >= in like is)")

    def in_list(self, name: str, negated: bool, pos: int) -> InList:
        if not self.accept("punct", "("):
            raise self.fail("'(' after 'in'")
        values, positions = [], []
        while True:
            positions.append(self.peek().pos)
            values.append(self.literal())
            if self.accept("punct", ")"):
                return InList(name, tuple(values), negated, pos, tuple(positions))
            if not self.accept("punct", ","):
                raise self.fail("',' or ')'")

    def literal(self) -> Value:
        token = self.take()
        if token.kind in ("string", "number") and token.value is not None:
            return token.value
        if token.kind == "kw" and token.text in ("true", "false"):
            return token.text == "true"
        if token.kind == "kw" and token.text == "null":
            raise syntax_error("null is not a value: write 'is null' or 'is not null'", self.text, token.pos)
        raise self.fail("a value ('text', a number, true or false)", token)


def parse(expression: str) -> Expr:
    """Parse one filter expression into its AST. Raises ``InvalidQuery`` (with ``position``, 0-based,
    and a message that shows the expression with a caret) when it does not follow the grammar."""
    return _Parser(expression).parse()


def render_value(value: Value) -> str:
    """A literal as the language spells it. Raises ``ValueError`` for a non-finite float."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write a non-finite number: {value}")
        return repr(value)
    return "'" + value.replace("'", "''") + "'"


def _render_name(name: str) -> str:
    if _NAME.fullmatch(name) and name.lower() not in KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def render(expr: Expr) -> str:
    """The expression as text that ``parse`` reads back to an equal AST (parentheses only where needed).
    Raises ``ValueError`` for a non-finite float, which the language cannot spell."""
    if isinstance(expr, And | Or):
        inner = (Or,) if isinstance(expr, Or) else (And, Or)  # a nested And/Or of the same kind keeps ()
        parts = [f"({render(item)})" if isinstance(item, inner) else render(item) for item in expr.items]
        return (" or " if isinstance(expr, Or) else " and ").join(parts)
    if isinstance(expr, Not):
        operand = render(expr.operand)
        return f"not ({operand})" if isinstance(expr.operand, And | Or) else f"not {operand}"
    name, neg = _render_name(expr.name), "not " if getattr(expr, "negated", False) else ""
    if isinstance(expr, Compare):
        return f"{name} {expr.op} {render_value(expr.value)}"
    if isinstance(expr, InList):
        return f"{name} {neg}in ({', '.join(map(render_value, expr.values))})"
    if isinstance(expr, IsNull):
        return f"{name} is {neg}null"
    return f"{name} {neg}like {render_value(expr.pattern)}"


def referenced_names(expr: Expr | str) -> set[str]:
    """The column and field names an expression uses. Raises ``InvalidQuery`` if text does not parse."""
    if isinstance(expr, str):
        expr = parse(expr)
    if isinstance(expr, And | Or):
        return set().union(*(referenced_names(item) for item in expr.items))
    if isinstance(expr, Not):
        return referenced_names(expr.operand)
    return {expr.name}
