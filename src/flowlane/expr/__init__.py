"""flowlane's safe expression language (FORMATS: "Values, expressions, durations").

A safe subset of Python expressions, parsed and checked once, compiled to a small Python
function and evaluated many times. A missing value is ``None``, never an exception;
anything outside the subset is refused at compile time with an :class:`ExpressionError`.

>>> compile_expression("counters.calls < 3").test({"counters": {"calls": 1}})
True
"""

from flowlane.expr.compiler import (
    DEFAULT_NAMES,
    Expression,
    compile_expression,
    compile_value,
    evaluate,
    is_expression_literal,
)
from flowlane.expr.runtime import FUNCTIONS, Readable

__all__ = [
    "DEFAULT_NAMES",
    "FUNCTIONS",
    "Expression",
    "Readable",
    "compile_expression",
    "compile_value",
    "evaluate",
    "is_expression_literal",
]
