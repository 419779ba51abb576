"""How a workflow or activity function wants its input.

A function without a second parameter is called as `fn(ctx)`; otherwise `fn(ctx, input)`.
A second parameter annotated with a model class (anything with `model_validate`, such as a
pydantic v2 model; `Optional[Model]` is unwrapped) receives the decoded input validated
into that class.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4096)
def _input_spec(fn: Callable[..., Any]) -> tuple[bool, Any]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True, None
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if len(positional) < 2:
        return False, None
    second = positional[1]
    annotation = second.annotation
    if isinstance(annotation, str):
        try:
            annotation = typing.get_type_hints(fn).get(second.name, None)
        except Exception:  # an unresolvable forward reference: treat as untyped
            annotation = None
    return True, _model_class(annotation)


def _model_class(annotation: Any) -> Any:
    if annotation is None or annotation is inspect.Parameter.empty:
        return None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _model_class(args[0]) if len(args) == 1 else None
    if isinstance(annotation, type) and callable(getattr(annotation, "model_validate", None)):
        return annotation
    return None


def call_with_input(fn: Callable[..., Any], ctx: Any, value: Any) -> Any:
    """Call `fn` with the context, and with the input when it takes one."""
    takes_input, model = _input_spec(fn)
    if not takes_input:
        return fn(ctx)
    if model is not None and value is not None and not isinstance(value, model):
        if hasattr(value, "__dict__") and not isinstance(value, dict):
            value = vars(value)
        value = model.model_validate(value)
    return fn(ctx, value)
