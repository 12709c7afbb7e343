"""User rules: a declarative YAML file of expectations, validated, and evaluated batch by batch.

    rules:
      - {column: age, between: [0, 120]}
      - {column: customer_id, unique: true}
      - {column: email, not_null: true}
      - {column: status, in_set: [active, churned]}
      - {column: zip, matches: '^\\d{5}$'}
      - {name: ends_after_start, expression: "end_date >= start_date"}
      - {name: total_is_sum, expression: "total == net + tax"}

Expressions allow column names, numbers, strings, + - * /, abs(), comparisons, and/or/not.
`==` between numbers is a tolerant comparison (relative 1e-9, absolute 1e-6).
"""

import ast
import re
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from lockflow.common.errors import InvalidInput
from lockflow.common.models import Model, Severity

RuleKind = Literal["not_null", "unique", "between", "in_set", "matches", "expression"]
CHECKS: tuple[RuleKind, ...] = ("not_null", "unique", "between", "in_set", "matches", "expression")
ABS_TOLERANCE = 1e-6
REL_TOLERANCE = 1e-9


class Rule(Model):
    """One expectation: exactly one check, on a column (or an expression over columns)."""

    name: str | None = Field(default=None, max_length=100)
    column: str | None = None
    not_null: bool = False
    unique: bool = False
    between: tuple[float | None, float | None] | None = None
    in_set: list[str | int | float | bool] | None = None
    matches: str | None = None
    expression: str | None = None
    severity: Severity | None = None

    @field_validator("matches")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            re.compile(value)
            pc.match_substring_regex(pa.array([""]), pattern=value)
        except (re.error, pa.ArrowInvalid) as exc:
            raise ValueError(f"pattern {value!r} is not a valid regular expression ({exc})") from exc
        return value

    @field_validator("expression")
    @classmethod
    def _expression_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_expression(value)
        return value

    @model_validator(mode="after")
    def _one_check(self) -> "Rule":
        kinds = self.kinds()
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            raise ValueError(f"a rule needs exactly one check of {', '.join(CHECKS)} (found: {found})")
        if kinds[0] != "expression" and not self.column:
            raise ValueError(f"a '{kinds[0]}' rule needs a 'column'")
        if self.between is not None:
            low, high = self.between
            if low is None and high is None:
                raise ValueError("between needs at least one bound, e.g. [0, null]")
            if low is not None and high is not None and low > high:
                raise ValueError(f"between: the lower bound {low:g} is above the upper bound {high:g}")
        return self

    def kinds(self) -> list[RuleKind]:
        """The checks this rule sets."""
        set_ = {
            "not_null": self.not_null,
            "unique": self.unique,
            "between": self.between is not None,
            "in_set": self.in_set is not None,
            "matches": self.matches is not None,
            "expression": self.expression is not None,
        }
        return [k for k in CHECKS if set_[k]]

    @property
    def kind(self) -> RuleKind:
        """The single check this rule sets."""
        return self.kinds()[0]

    def label(self) -> str:
        """The rule's name, or one made from its check."""
        if self.name:
            return self.name
        if self.kind == "expression":
            return str(self.expression)
        return f"{self.column} {self.kind}"

    def columns(self) -> list[str]:
        """The columns the rule reads."""
        if self.kind == "expression":
            return expression_columns(str(self.expression))
        return [str(self.column)]


class QualityRules(Model):
    """The rules file."""

    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_labels(self) -> "QualityRules":
        labels = [r.label() for r in self.rules]
        repeated = sorted({x for x in labels if labels.count(x) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(repeated)}")
        return self


def parse_rules(data: Any, *, origin: str = "rules") -> QualityRules:
    """Validate rules given as parsed YAML/JSON; InvalidInput names each problem."""
    if data is None:
        return QualityRules()
    if not isinstance(data, dict):
        raise InvalidInput(f"{origin}: expected a mapping with a 'rules' list, got {type(data).__name__}")
    try:
        return QualityRules.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"] if p not in ("tuple[float | None, float | None]",))
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = f"unknown key (allowed: {', '.join(sorted(Rule.model_fields))})"
            problems.append(f"{where}: {message}" if where else message)
        raise InvalidInput(f"{origin}: " + "; ".join(problems)) from exc


def load_rules(text: str, *, origin: str = "rules file") -> QualityRules:
    """Parse and validate a YAML rules file."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{origin}: not valid YAML ({exc})") from exc
    return parse_rules(data, origin=origin)


RULES_MAX_CHARS = 200_000


def quality_rules_of(given: str | dict[str, Any] | None, *, origin: str = "rules") -> dict[str, Any] | None:
    """Rules given with a run (YAML text or a parsed mapping), validated, as the run stores them."""
    if given is None or (isinstance(given, str) and not given.strip()):
        return None
    if isinstance(given, str):
        if len(given) > RULES_MAX_CHARS:
            raise InvalidInput(f"{origin}: longer than {RULES_MAX_CHARS} characters")
        rules = load_rules(given, origin=origin)
    else:
        rules = parse_rules(given, origin=origin)
    return rules.model_dump(mode="json", exclude_defaults=True)


def check_columns(rules: QualityRules, columns: list[str]) -> None:
    """InvalidInput if a rule names a column the data does not have."""
    known = set(columns)
    problems = [
        f"rule '{r.label()}' names unknown column(s) {', '.join(sorted(set(r.columns()) - known))}"
        for r in rules.rules
        if set(r.columns()) - known
    ]
    if problems:
        raise InvalidInput("; ".join(problems) + f" (columns: {', '.join(columns)})")


# ---- expressions -------------------------------------------------------------------------------

_BINOPS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide"}
_CMPOPS = {
    ast.Lt: "less",
    ast.LtE: "less_equal",
    ast.Gt: "greater",
    ast.GtE: "greater_equal",
    ast.NotEq: "not_equal",
    ast.Eq: "equal",
}


def parse_expression(text: str) -> ast.Expression:
    """Parse a rule expression, allowing only the documented operations."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"expression {text!r} does not parse: {exc.msg}") from exc
    for node in ast.walk(tree):
        allowed = (
            ast.Expression,
            ast.Compare,
            ast.BoolOp,
            ast.And,
            ast.Or,
            ast.UnaryOp,
            ast.Not,
            ast.USub,
            ast.BinOp,
            ast.Name,
            ast.Load,
            ast.Constant,
            ast.Call,
            *_BINOPS,
            *_CMPOPS,
        )
        if not isinstance(node, allowed):
            raise ValueError(f"expression {text!r} uses {type(node).__name__}, which rules do not allow")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id == "abs" and len(node.args) == 1
        ):
            raise ValueError(f"expression {text!r}: the only function allowed is abs(x)")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str | bool):
            raise ValueError(f"expression {text!r}: constant {node.value!r} is not a number or string")
    if not isinstance(tree.body, ast.Compare | ast.BoolOp) and not (
        isinstance(tree.body, ast.UnaryOp) and isinstance(tree.body.op, ast.Not)
    ):
        raise ValueError(f"expression {text!r} must be a comparison (e.g. 'end >= start')")
    return tree


def expression_columns(text: str) -> list[str]:
    """The column names an expression reads, in order of first use."""
    names: list[str] = []
    for node in ast.walk(parse_expression(text)):
        if isinstance(node, ast.Name) and node.id != "abs" and node.id not in names:
            names.append(node.id)
    return names


def evaluate(text: str, table: pa.RecordBatch | pa.Table) -> pa.Array:
    """Evaluate a rule expression on a batch; null where an operand is null."""
    result = _eval(parse_expression(text).body, table)
    return result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result


def violations(text: str, table: pa.RecordBatch | pa.Table) -> pa.Array:
    """True where the expression is false (rows with a null operand are not counted)."""
    return pc.fill_null(pc.invert(evaluate(text, table)), False)


def _eval(node: ast.AST, table: Any) -> Any:
    if isinstance(node, ast.Name):
        value = table.column(node.id)
        if pa.types.is_date(value.type):
            value = pc.cast(value, pa.timestamp("s"))
        return value
    if isinstance(node, ast.Constant):
        return pa.scalar(node.value)
    if isinstance(node, ast.UnaryOp):
        inner = _eval(node.operand, table)
        return pc.invert(inner) if isinstance(node.op, ast.Not) else pc.negate(inner)
    if isinstance(node, ast.Call):
        return pc.abs(_eval(node.args[0], table))
    if isinstance(node, ast.BinOp):
        return getattr(pc, _BINOPS[type(node.op)])(_eval(node.left, table), _eval(node.right, table))
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, table) for v in node.values]
        combine = pc.and_kleene if isinstance(node.op, ast.And) else pc.or_kleene
        out = values[0]
        for value in values[1:]:
            out = combine(out, value)
        return out
    if isinstance(node, ast.Compare):
        left = _eval(node.left, table)
        out = None
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, table)
            part = _compare(op, left, right)
            out = part if out is None else pc.and_kleene(out, part)
            left = right
        return out
    raise ValueError(f"cannot evaluate {type(node).__name__}")


def _compare(op: ast.cmpop, left: Any, right: Any) -> Any:
    numeric = all(pa.types.is_integer(x.type) or pa.types.is_floating(x.type) for x in (left, right))
    if isinstance(op, ast.Eq | ast.NotEq) and numeric:
        diff = pc.abs(pc.subtract(pc.cast(left, pa.float64()), pc.cast(right, pa.float64())))
        scale = pc.max_element_wise(pc.abs(pc.cast(left, pa.float64())), pc.abs(pc.cast(right, pa.float64())))
        close = pc.less_equal(diff, pc.add(pc.multiply(scale, REL_TOLERANCE), ABS_TOLERANCE))
        return close if isinstance(op, ast.Eq) else pc.invert(close)
    return getattr(pc, _CMPOPS[type(op)])(left, right)
