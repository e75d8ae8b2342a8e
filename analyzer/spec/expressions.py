"""A small, safe parser for size expressions in specs.

Spec text is never given to eval, sympify or parse_expr (they run Python).
The grammar is arithmetic over integers and declared symbols only:

    expr  := term (('+' | '-') term)*
    term  := unary (('*' | '/' | '//') unary)*
    unary := ('+' | '-') unary | power
    power := atom ('**' unary)?                 (right-associative)
    atom  := INT | NAME | FUNC '(' expr (',' expr)* ')' | '(' expr ')'
    FUNC  := floor | ceil | min | max | mod

Caps keep hostile input cheap: length, nesting depth, exponent size, the size of
any number (MAX_CONSTANT_BITS) and the polynomial degree (MAX_EXPONENT).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import sympy

from analyzer.errors import did_you_mean
from analyzer.symbolic import floor_div

MAX_LENGTH = 500
MAX_DEPTH = 50
MAX_EXPONENT = 256
MAX_CONSTANT_BITS = 4096

FUNCTIONS = ("floor", "ceil", "min", "max", "mod")
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|//|[-+*/(),]))"
)


class ExpressionSyntaxError(ValueError):
    """Raised with a message and the 0-based column of the problem."""

    def __init__(self, message: str, column: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.hint = hint


@dataclass(frozen=True)
class _Token:
    kind: str  # number | name | op | end
    text: str
    column: int


_FORBIDDEN_NAME = re.compile(r"(?<![A-Za-z0-9_])(__\w*|lambda|import|eval|exec|open|os|sys)(?![A-Za-z0-9_])")


def _not_code(text: str) -> None:
    """Name the code-like word first: it explains an error better than the quote after it."""
    match = _FORBIDDEN_NAME.search(text)
    if match:
        raise ExpressionSyntaxError(
            f"{match.group(1)!r} is not allowed: expressions are arithmetic over declared symbols, not code",
            match.start(1),
        )


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            _not_code(text)
            column = position + (len(text[position:]) - len(text[position:].lstrip()))
            char = text[column]
            hint = None
            if char == ".":
                hint = ("attribute access is not allowed: expressions use only integers, symbols and "
                        "+ - * / // ** floor ceil min max mod")
            elif char in "'\"":
                hint = "strings are not allowed inside an expression"
            elif char == "%":
                hint = "write mod(L, n) for a remainder"
            raise ExpressionSyntaxError(f"unexpected character {char!r}", column, hint)
        kind = match.lastgroup or "op"
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, symbols: Mapping[str, sympy.Symbol]) -> None:
        self.text = text
        self.symbols = symbols
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        if self.current.text != text:
            found = self.current.text or "end of expression"
            raise ExpressionSyntaxError(f"expected {text!r}, found {found!r}", self.current.column)
        self.advance()

    def parse(self) -> sympy.Expr:
        value = self.expr()
        if self.current.kind != "end":
            raise ExpressionSyntaxError(f"unexpected {self.current.text!r}", self.current.column)
        return value

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionSyntaxError(f"expression nested deeper than {MAX_DEPTH} levels", self.current.column)

    def expr(self) -> sympy.Expr:
        value = self.term()
        while self.current.text in ("+", "-"):
            op = self.advance().text
            right = self.term()
            value = value + right if op == "+" else value - right
        return value

    def term(self) -> sympy.Expr:
        value = self.unary()
        while self.current.text in ("*", "/", "//"):
            token = self.advance()
            right = self.unary()
            if token.text == "*":
                value = value * right
                continue
            if right == 0:
                raise ExpressionSyntaxError("division by zero", token.column)
            value = value / right if token.text == "/" else floor_div(value, right)
        return value

    def unary(self) -> sympy.Expr:
        if self.current.text in ("+", "-"):
            op = self.advance().text
            self.nested()
            operand = self.unary()
            self.depth -= 1
            return -operand if op == "-" else operand
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.atom()
        if self.current.text != "**":
            return base
        token = self.advance()
        self.nested()
        exponent = self.unary()
        self.depth -= 1
        if not (exponent.is_Integer and 0 <= exponent <= MAX_EXPONENT):
            raise ExpressionSyntaxError(
                f"exponent {exponent} is not allowed (exponents are integer constants from 0 to {MAX_EXPONENT})",
                token.column,
            )
        if base.is_Integer and abs(int(base)).bit_length() * int(exponent) > MAX_CONSTANT_BITS:
            raise ExpressionSyntaxError(f"{base}**{exponent} is too large (over {MAX_CONSTANT_BITS} bits)", token.column)
        return base**exponent

    def atom(self) -> sympy.Expr:
        token = self.current
        if token.kind == "number":
            self.advance()
            if not re.fullmatch(r"\d[\d_]*", token.text):
                raise ExpressionSyntaxError(f"non-integer number {token.text}: sizes are integers", token.column)
            return sympy.Integer(int(token.text))
        if token.kind == "name":
            self.advance()
            if self.current.text == "(":
                return self.call(token)
            return self.symbol(token)
        if token.text == "(":
            self.advance()
            self.nested()
            value = self.expr()
            self.depth -= 1
            self.expect(")")
            return value
        found = token.text or "end of expression"
        raise ExpressionSyntaxError(f"expected a number, a symbol or '(', found {found!r}", token.column)

    def symbol(self, token: _Token) -> sympy.Expr:
        name = token.text
        if name in self.symbols:
            return self.symbols[name]
        if name.startswith("__") or name in ("lambda", "import", "eval", "exec", "open"):
            raise ExpressionSyntaxError(
                f"{name!r} is not allowed: expressions are arithmetic over declared symbols, not code", token.column
            )
        if name in FUNCTIONS:
            raise ExpressionSyntaxError(f"{name} needs arguments, e.g. {name}(L / 2)", token.column)
        declared = ", ".join(sorted(self.symbols)) or "none"
        hint = did_you_mean(name, self.symbols) or f"declare it under 'symbols:' (declared: {declared})"
        raise ExpressionSyntaxError(f"undefined symbol {name!r}", token.column, hint)

    def call(self, token: _Token) -> sympy.Expr:
        name = token.text
        if name not in FUNCTIONS:
            hint = did_you_mean(name, FUNCTIONS) or f"allowed functions: {', '.join(FUNCTIONS)}"
            raise ExpressionSyntaxError(f"unknown function {name!r}", token.column, hint)
        self.expect("(")
        self.nested()
        args = [self.expr()]
        while self.current.text == ",":
            self.advance()
            args.append(self.expr())
        self.depth -= 1
        self.expect(")")
        if name in ("floor", "ceil"):
            if len(args) != 1:
                raise ExpressionSyntaxError(f"{name} takes one argument, got {len(args)}", token.column)
            return sympy.floor(args[0]) if name == "floor" else sympy.ceiling(args[0])
        if name == "mod":
            if len(args) != 2:
                raise ExpressionSyntaxError(f"mod takes two arguments (mod(a, n): the remainder of a // n), got {len(args)}",
                                            token.column)
            if args[1] == 0:
                raise ExpressionSyntaxError("mod by zero", token.column)
            return sympy.Mod(args[0], args[1])
        if len(args) < 2:
            raise ExpressionSyntaxError(f"{name} takes at least two arguments", token.column)
        return sympy.Min(*args) if name == "min" else sympy.Max(*args)


def parse_expression(text: str, symbols: Mapping[str, sympy.Symbol]) -> sympy.Expr:
    """Parse `text` into a sympy expression over `symbols`; raise ExpressionSyntaxError."""
    if len(text) > MAX_LENGTH:
        raise ExpressionSyntaxError(f"expression longer than {MAX_LENGTH} characters", MAX_LENGTH)
    if text.strip() == "":
        raise ExpressionSyntaxError("empty expression", 0)
    value = _Parser(text, symbols).parse()
    for atom in value.atoms(sympy.Rational):
        if max(abs(atom.p), atom.q).bit_length() > MAX_CONSTANT_BITS:
            raise ExpressionSyntaxError(f"a number in this expression is too large (over {MAX_CONSTANT_BITS} bits)", 0)
    if _degree(value) > MAX_EXPONENT:
        raise ExpressionSyntaxError(f"polynomial degree over {MAX_EXPONENT} (the expression is too large to expand)", 0)
    return value


def _degree(expr: sympy.Expr) -> int:
    """An upper bound on the polynomial degree of `expr` in its symbols (floor, min, max pass it through)."""
    if expr.is_Symbol:
        return 1
    if expr.is_Number or not expr.args:
        return 0
    if expr.is_Mul:
        return sum(_degree(a) for a in expr.args)
    if expr.is_Pow:
        base, exponent = expr.args
        return _degree(base) * abs(int(exponent)) if exponent.is_Integer else MAX_EXPONENT + 1
    return max(_degree(a) for a in expr.args)
