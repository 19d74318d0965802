"""Parse condition text into an untyped syntax tree. No ``eval``: a small recursive-descent parser.

Grammar::

    expr      := and_expr ("or" and_expr)*
    and_expr  := not_expr ("and" not_expr)*
    not_expr  := "not" not_expr | test
    test      := operand (CMP operand | ["not"] "in" (list | name) | "matches" name)?
    operand   := NUMBER | STRING | "true" | "false" | name | "(" expr ")" | list
    list      := "[" [literal ("," literal)*] "]"
    name      := IDENT ("." IDENT)*
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from guardrail.lang.errors import ExpressionError

MAX_EXPRESSION = 4000  # characters
MAX_DEPTH = 40  # nesting of parentheses and "not"
MAX_LIST = 500  # items in a literal list


@dataclass(frozen=True, slots=True)
class Name:
    path: str
    offset: int


@dataclass(frozen=True, slots=True)
class Number:
    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class String:
    value: str
    offset: int


@dataclass(frozen=True, slots=True)
class Boolean:
    value: bool
    offset: int


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Number | String | Boolean, ...]
    offset: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    offset: int


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]
    offset: int


@dataclass(frozen=True, slots=True)
class Comparison:
    op: str
    left: Node
    right: Node
    offset: int  # of the operator


@dataclass(frozen=True, slots=True)
class Membership:
    negated: bool
    left: Node
    right: ListLit | Name
    offset: int


@dataclass(frozen=True, slots=True)
class Matches:
    left: Node
    lexicon: Name
    offset: int


Literal = Number | String | Boolean
Node = Name | Number | String | Boolean | ListLit | Not | Logic | Comparison | Membership | Matches

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d[\d_]*(?:\.\d+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>==|!=|>=|<=|>|<|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)

_KEYWORDS = {"and", "or", "not", "in", "matches", "true", "false"}
_COMPARISONS = {"==", "!=", ">=", "<=", ">", "<"}
_MISTAKES = {
    "=": "use '==' to compare",
    "&&": "use 'and'",
    "||": "use 'or'",
    "!": "use 'not'",
}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | string | name | op | keyword | end
    text: str
    offset: int


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_EXPRESSION:
        raise ExpressionError(f"condition longer than {MAX_EXPRESSION} characters", 0)
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            for wrong, advice in _MISTAKES.items():
                if text.startswith(wrong, position):
                    raise ExpressionError(f"unsupported operator {wrong!r}: {advice}", position)
            char = text[position]
            if char in "\"'":
                raise ExpressionError("unterminated string", position)
            raise ExpressionError(f"unexpected character {char!r}", position)
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            value = match.group()
            if kind == "name" and value in _KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, value, position))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        token = self.current
        if token.kind == kind and (text is None or token.text == text):
            return self.advance()
        return None

    def expect(self, kind: str, text: str, what: str) -> Token:
        token = self.accept(kind, text)
        if token is None:
            raise ExpressionError(
                f"expected {what}, found {_describe(self.current)}", self.current.offset
            )
        return token

    def enter(self, offset: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"condition nested deeper than {MAX_DEPTH} levels", offset)

    def parse(self) -> Node:
        if self.current.kind == "end":
            raise ExpressionError("empty condition", 0)
        node = self.expr()
        if self.current.kind != "end":
            raise ExpressionError(f"unexpected {_describe(self.current)}", self.current.offset)
        return node

    def expr(self) -> Node:
        return self._logic("or", self.and_expr)

    def and_expr(self) -> Node:
        return self._logic("and", self.not_expr)

    def _logic(self, op: str, operand: object) -> Node:
        assert callable(operand)
        start = self.current.offset
        first: Node = operand()
        items = [first]
        while self.accept("keyword", op):
            items.append(operand())
        return first if len(items) == 1 else Logic(op, tuple(items), start)

    def not_expr(self) -> Node:
        token = self.accept("keyword", "not")
        if token is not None:
            self.enter(token.offset)
            operand = self.not_expr()
            self.depth -= 1
            return Not(operand, token.offset)
        return self.test()

    def test(self) -> Node:
        left = self.operand()
        token = self.current
        if token.kind == "op" and token.text in _COMPARISONS:
            self.advance()
            return Comparison(token.text, left, self.operand(), token.offset)
        if token.kind == "keyword" and token.text == "not":
            self.advance()
            self.expect("keyword", "in", "'in' after 'not'")
            return Membership(True, left, self._collection(), token.offset)
        if token.kind == "keyword" and token.text == "in":
            self.advance()
            return Membership(False, left, self._collection(), token.offset)
        if token.kind == "keyword" and token.text == "matches":
            self.advance()
            target = self.current
            if target.kind != "name":
                raise ExpressionError("expected 'lexicon.NAME' after 'matches'", target.offset)
            self.advance()
            return Matches(left, Name(target.text, target.offset), token.offset)
        return left

    def _collection(self) -> ListLit | Name:
        token = self.current
        if token.kind == "op" and token.text == "[":
            return self._list()
        if token.kind == "name":
            self.advance()
            return Name(token.text, token.offset)
        raise ExpressionError(
            f"expected a list or 'watchlist.NAME', found {_describe(token)}", token.offset
        )

    def _list(self) -> ListLit:
        start = self.expect("op", "[", "'['")
        items: list[Literal] = []
        if not self.accept("op", "]"):
            while True:
                item = self.operand()
                if not isinstance(item, Number | String | Boolean):
                    raise ExpressionError("a list holds only literal values", item.offset)
                items.append(item)
                if len(items) > MAX_LIST:
                    raise ExpressionError(f"list longer than {MAX_LIST} items", start.offset)
                if self.accept("op", "]"):
                    break
                self.expect("op", ",", "',' or ']'")
        return ListLit(tuple(items), start.offset)

    def operand(self) -> Node:
        token = self.current
        if token.kind == "number":
            self.advance()
            return Number(token.text.replace("_", ""), token.offset)
        if token.kind == "string":
            self.advance()
            return String(_unquote(token.text), token.offset)
        if token.kind == "keyword" and token.text in ("true", "false"):
            self.advance()
            return Boolean(token.text == "true", token.offset)
        if token.kind == "name":
            self.advance()
            return Name(token.text, token.offset)
        if token.kind == "op" and token.text == "(":
            self.advance()
            self.enter(token.offset)
            node = self.expr()
            self.depth -= 1
            self.expect("op", ")", "')'")
            return node
        if token.kind == "op" and token.text == "[":
            return self._list()
        raise ExpressionError(f"expected a value, found {_describe(token)}", token.offset)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "end of condition"
    return repr(token.text)


def parse(text: str) -> Node:
    """Parse a condition; raises ``ExpressionError`` with the offset of the problem."""
    return _Parser(text).parse()
