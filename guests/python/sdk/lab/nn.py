"""Inference on a model granted to the job, through ``wasi:nn``: the host
runs the model (ONNX) at native speed.

::

    from lab import lab

    model = lab.nn.Model.load("digits-mlp")               # registry id or name
    out = model.run_f32("input", [1, 64], pixels)         # every output, by name
    probabilities = out["probabilities"].to_f32()

A failed call raises :class:`NnError` (``.code`` is the WIT spelling of the
``wasi:nn`` error code: ``"invalid-argument"``, ``"invalid-encoding"``,
``"not-found"``, ``"security"``, ``"too-large"``...; ``.message`` the host's
explanation). It is a :class:`lab.Error`: uncaught, it fails the job with
``"<code>: <message>"``.

Tensor data is little-endian and row-major (the ``wasi:nn`` layout); the
conversions use ``struct``/``array`` (numpy does not run in a component).
"""

from __future__ import annotations

import struct as _struct
import sys as _sys
from array import array as _array
from collections.abc import Sequence as _SequenceABC
from typing import Iterable, Iterator, List, Optional, Sequence

from wit_world.imports import errors as _errors
from wit_world.imports import graph as _graph
from wit_world.imports import inference as _inference
from wit_world.imports import tensor as _tensor

import componentize_py_types as _cpt

from .errors import Error

__all__ = [
    "Model", "Tensor", "Outputs", "NnError", "TensorType", "ErrorCode",
    "code_name", "type_name", "load_bytes",
]

#: The element types (``TensorType.FP32``, ``TensorType.I64``...).
TensorType = _tensor.TensorType
#: The ``wasi:nn`` error codes (``ErrorCode.INVALID_ARGUMENT``...).
ErrorCode = _errors.ErrorCode

_TYPE_NAMES = {
    TensorType.FP16: "FP16",
    TensorType.FP32: "FP32",
    TensorType.FP64: "FP64",
    TensorType.BF16: "BF16",
    TensorType.U8: "U8",
    TensorType.I32: "I32",
    TensorType.I64: "I64",
}


def code_name(code: "ErrorCode") -> str:
    """The code as the WIT spells it (``invalid-argument``, ``too-large``...)."""
    return code.name.lower().replace("_", "-")


def type_name(ty: "TensorType") -> str:
    """The element type as the WIT spells it (``FP32``, ``I64``...)."""
    return _TYPE_NAMES[ty]


class NnError(Error):
    """A failed ``wasi:nn`` call. ``code``: the WIT name of the error code
    (``"invalid-argument"``, ``"not-found"``, ``"security"``...);
    ``message``: the host's explanation. ``str()`` is ``"<code>: <message>"``
    as in the Rust SDK."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"NnError({self.code!r}, {self.message!r})"


def _call(fn, *args):
    """Call a fallible ``wasi:nn`` import; its ``err(error)`` (a resource,
    released here) becomes an :class:`NnError`."""
    try:
        return fn(*args)
    except _cpt.Err as e:
        value = e.value
        if not isinstance(value, _errors.Error):
            raise
        with value:
            err = NnError(code_name(value.code()), value.data())
        raise err from None


_LITTLE = _sys.byteorder == "little"


def _pack(typecode: str, values: Iterable) -> bytes:
    a = _array(typecode, values)
    if not _LITTLE:
        a.byteswap()
    return a.tobytes()


def _unpack(typecode: str, data: bytes) -> List:
    a = _array(typecode)
    a.frombytes(data)
    if not _LITTLE:
        a.byteswap()
    return a.tolist()


class Tensor:
    """One tensor: ``name``, ``dims`` (a list of sizes), ``ty``
    (:data:`TensorType`) and ``data`` (little-endian bytes)."""

    __slots__ = ("name", "dims", "ty", "data")

    def __init__(self, name: str, dims: Sequence[int], ty: "TensorType", data: bytes):
        self.name = name
        self.dims = [int(d) for d in dims]
        self.ty = ty
        self.data = bytes(data)

    @classmethod
    def f32(cls, name: str, dims: Sequence[int], values: Iterable[float]) -> "Tensor":
        """An FP32 tensor from values (row-major)."""
        return cls(name, dims, TensorType.FP32, _pack("f", values))

    @classmethod
    def i64(cls, name: str, dims: Sequence[int], values: Iterable[int]) -> "Tensor":
        """An I64 tensor from values (row-major; token ids, ...)."""
        return cls(name, dims, TensorType.I64, _pack("q", values))

    def to_f32(self) -> List[float]:
        """The values of an FP32 tensor (Python floats, exactly the f32 values)."""
        self._expect(TensorType.FP32)
        return _unpack("f", self.data[: len(self.data) // 4 * 4])

    def to_i64(self) -> List[int]:
        """The values of an I64 tensor (class labels, token ids)."""
        self._expect(TensorType.I64)
        return _unpack("q", self.data[: len(self.data) // 8 * 8])

    def _expect(self, ty: "TensorType") -> None:
        if self.ty != ty:
            raise NnError("invalid-argument",
                          f"tensor `{self.name}` is {type_name(self.ty)}, not {type_name(ty)}")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Tensor) and self.name == other.name and self.dims == other.dims
                and self.ty == other.ty and self.data == other.data)

    def __repr__(self) -> str:
        dims = "x".join(str(d) for d in self.dims)
        return f"<Tensor {self.name!r} {type_name(self.ty)} {dims}>"


class Outputs(_SequenceABC):
    """The outputs of one run, in the model's order; ``outputs["name"]`` (or
    ``get("name")``) finds one by name, raising :class:`NnError`
    ``not-found`` for a name the model has not."""

    def __init__(self, tensors: List[Tensor]):
        self.tensors = tensors

    def get(self, name: str) -> Tensor:
        for t in self.tensors:
            if t.name == name:
                return t
        names = ", ".join(t.name for t in self.tensors)
        raise NnError("not-found", f"no output `{name}` (outputs: {names})")

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return self.get(key)
        return self.tensors[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return any(t.name == key for t in self.tensors)
        return key in self.tensors

    def __len__(self) -> int:
        return len(self.tensors)

    def __iter__(self) -> Iterator[Tensor]:
        return iter(self.tensors)

    def names(self) -> List[str]:
        return [t.name for t in self.tensors]

    def __repr__(self) -> str:
        return f"Outputs({self.tensors!r})"


class Model:
    """A loaded model with its execution context."""

    def __init__(self, graph: "_graph.Graph", ctx: "_inference.GraphExecutionContext"):
        self._graph = graph
        self._ctx = ctx
        self._closed = False

    @classmethod
    def load(cls, name: str) -> "Model":
        """Load a model granted to the job, by registry id or name (or
        ``ID/FILE.onnx`` for one file of a model holding several)."""
        g = _call(_graph.load_by_name, name)
        ctx = _call(g.init_execution_context)
        return cls(g, ctx)

    def run(self, inputs: Sequence[Tensor]) -> Outputs:
        """Run the model on named inputs; returns every output."""
        if self._closed:
            raise NnError("invalid-argument", "the model was closed")
        named = [(t.name, _tensor.Tensor(list(t.dims), t.ty, t.data)) for t in inputs]
        out = _call(self._ctx.compute, named)
        tensors = []
        for name, t in out:
            with t:
                tensors.append(Tensor(name, t.dimensions(), t.ty(), t.data()))
        return Outputs(tensors)

    def run_f32(self, input: str, dims: Sequence[int], values: Iterable[float]) -> Outputs:
        """Run a single-input model on an FP32 tensor."""
        return self.run([Tensor.f32(input, dims, values)])

    def close(self) -> None:
        """Release the model now (otherwise when it is garbage-collected)."""
        if not self._closed:
            self._closed = True
            self._ctx.__exit__(None, None, None)
            self._graph.__exit__(None, None, None)

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_bytes(builders: Sequence[bytes], encoding: Optional["_graph.GraphEncoding"] = None,
               target: Optional["_graph.ExecutionTarget"] = None) -> "_graph.Graph":
    """``wasi:nn`` ``graph.load`` of model bytes (default ONNX on the CPU).
    labhost refuses it (:class:`NnError` ``security``): load registry models
    granted to the job with :meth:`Model.load`."""
    encoding = _graph.GraphEncoding.ONNX if encoding is None else encoding
    target = _graph.ExecutionTarget.CPU if target is None else target
    return _call(_graph.load, [bytes(b) for b in builders], encoding, target)
