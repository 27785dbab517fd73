"""Test double of TensorRT-LLM 1.2.1 (tests/fakes/trtllm): how the nanobind bindings convert Python arguments.

Mimics nanobind's casters as read from wjakob/nanobind src/nb_func.cpp/common.cpp (seq_get, load_int, load_f32,
the bool caster) and include/nanobind/stl/chrono.h (duration_caster), which TensorRT-LLM 1.2's bindings
(cpp/tensorrt_llm/nanobind/executor/*.cpp) are built with:
- a token list (std::vector<int32>) takes any sequence but str/bytes (list, tuple, range, a 1-D numpy integer array)
  whose items are ints or have __index__ (numpy integers), in int32 range; floats (numpy's too) do not convert;
- an int parameter takes ints and __index__ objects, never floats;
- a bool parameter takes True/False (and numpy.bool_), not 0/1;
- a float parameter takes floats and ints;
- a std::chrono duration takes a datetime.timedelta or a float (seconds), NOT an int; milliseconds truncate.
"""
from __future__ import annotations

import datetime
import operator
from collections.abc import Sequence

INT32 = (-(2 ** 31), 2 ** 31 - 1)
UINT64 = (0, 2 ** 64 - 1)


class NoConversion(TypeError):
    """An argument that the binding's caster refuses (overload resolution then fails with a TypeError)."""


def to_int(value, bounds=INT32, what="int") -> int:
    if isinstance(value, float) or not hasattr(type(value), "__index__"):
        raise NoConversion(f"{what}: cannot convert {type(value).__name__!s} to an integer")
    number = operator.index(value)
    if not bounds[0] <= number <= bounds[1]:
        raise NoConversion(f"{what}: {number} is out of range")
    return number


def to_opt_int(value, bounds=INT32, what="int") -> int | None:
    return None if value is None else to_int(value, bounds, what)


def to_bool(value, what="bool") -> bool:
    if value is True or value is False:
        return value
    if type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool"):
        return bool(value)
    raise NoConversion(f"{what}: expected bool, got {type(value).__name__}")


def to_float(value, what="float") -> float:
    if isinstance(value, float) or (hasattr(type(value), "__index__") and not isinstance(value, bool)):
        return float(value)
    raise NoConversion(f"{what}: expected float, got {type(value).__name__}")


def to_opt_float(value, what="float") -> float | None:
    return None if value is None else to_float(value, what)


def is_sequence(value) -> bool:
    return isinstance(value, Sequence) or (hasattr(value, "__len__") and hasattr(value, "__getitem__")
                                           and not isinstance(value, (dict, str, bytes)))


def to_tokens(value, what="token ids") -> list[int]:
    if isinstance(value, (str, bytes)) or not is_sequence(value):
        raise NoConversion(f"{what}: expected a sequence of int, got {type(value).__name__}")
    return [to_int(item, INT32, what) for item in value]


def to_opt_token_lists(value, what="token id lists") -> list[list[int]] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not is_sequence(value):
        raise NoConversion(f"{what}: expected a sequence of sequences of int, got {type(value).__name__}")
    return [to_tokens(item, what) for item in value]


def to_milliseconds(value) -> datetime.timedelta | None:
    """std::optional<std::chrono::milliseconds>: None, a timedelta, or float seconds (truncated to whole ms)."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        micros = (value.days * 86400 + value.seconds) * 10 ** 6 + value.microseconds
    elif isinstance(value, float):
        micros = value * 1e6
    else:
        raise NoConversion(f"timeout: expected datetime.timedelta or float, got {type(value).__name__}")
    return datetime.timedelta(milliseconds=int(micros / 1000))


def incompatible(function: str, signatures: list[str], args: tuple, kwargs: dict) -> TypeError:
    """The TypeError nanobind raises when no overload accepts the arguments."""
    kinds = ", ".join([type(a).__name__ for a in args] + [f"{k}={type(v).__name__}" for k, v in kwargs.items()])
    supported = "\n".join(f"    {i}. {function}({s})" for i, s in enumerate(signatures, 1))
    return TypeError(f"{function}(): incompatible function arguments. The following argument types are supported:\n"
                     f"{supported}\n\nInvoked with types: {kinds}")
