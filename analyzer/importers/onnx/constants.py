"""Constants and shape arithmetic (Shape, Gather, Concat, ... of shapes, as torch.onnx writes for
`x.view(x.size(0), -1)`), evaluated here with sympy entries for symbolic sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy

from analyzer.importers.onnx.registry import HANDLERS, handles
from analyzer.importers.onnx.values import Const, Data, int_or_none, norm_axis, objects
from analyzer.symbolic import floor_div, product

if TYPE_CHECKING:
    from analyzer.importers.onnx.context import ImportContext


def fold(imp: ImportContext) -> None:
    """An op of constants only (shape arithmetic, torch's padding computations): computed here."""
    np = imp.np
    op = imp.node.op_type
    arrays = [imp.const(i) for i in imp.node.input if i]
    if op == "Reshape":
        array, shape = arrays
        entries = [sympy.sympify(d) for d in shape.reshape(-1)]
        if not all(e.is_Integer for e in entries):
            imp.set_output(Const((len(entries),), opaque="a Reshape of a constant to a symbolic shape"))
            return
        target = [int(e) for e in entries]
        target = [array.shape[i] if d == 0 and not imp.attrs().get("allowzero", 0) else d for i, d in enumerate(target)]
        imp.set_const(array.reshape(target))
    elif op == "Flatten":
        (array,) = arrays
        axis = norm_axis(imp.attrs().get("axis", 1), array.ndim)
        imp.set_const(array.reshape(int(np.prod(array.shape[:axis])), -1))
    elif op in ("Neg", "Abs", "Floor", "Ceil", "Sqrt"):
        (array,) = arrays
        function = {"Neg": lambda v: -v, "Abs": abs, "Floor": sympy.floor, "Ceil": sympy.ceiling,
                    "Sqrt": sympy.sqrt}[op]
        if array.dtype == object:
            imp.set_const(np.frompyfunc(lambda v: function(sympy.sympify(v)), 1, 1)(array))
        else:
            imp.set_const({"Neg": np.negative, "Abs": np.abs, "Floor": np.floor, "Ceil": np.ceil,
                            "Sqrt": np.sqrt}[op](array))
    elif op in ("Min", "Max", "Mod"):
        function = {"Min": lambda a, b: sympy.Min(a, b), "Max": lambda a, b: sympy.Max(a, b),
                    "Mod": lambda a, b: a - b * floor_div(a, b)}[op]
        result = arrays[0]
        for other in arrays[1:]:
            if result.dtype != object and other.dtype != object:
                result = {"Min": np.minimum, "Max": np.maximum, "Mod": np.mod}[op](result, other)
            else:
                result = np.frompyfunc(lambda a, b: function(sympy.sympify(a), sympy.sympify(b)), 2, 1)(
                    result.astype(object), other.astype(object))
        imp.set_const(result)
    else:
        HANDLERS[op](imp)


@handles("Constant")
def constant(imp: ImportContext) -> None:
    attrs = imp.attrs()
    if "value" in attrs:
        imp.set_const(imp.numpy_helper.to_array(attrs["value"]))
    elif "value_int" in attrs or "value_float" in attrs:
        imp.set_const(imp.np.array(attrs.get("value_int", attrs.get("value_float"))))
    elif "value_ints" in attrs or "value_floats" in attrs:
        imp.set_const(imp.np.array(list(attrs.get("value_ints", attrs.get("value_floats")))))
    else:
        raise imp.error("a Constant of a kind nnspec does not read (sparse or string)")


@handles("Shape")
def shape(imp: ImportContext) -> None:
    source = imp.value(imp.node.input[0])
    dims = source.onnx_shape() if isinstance(source, Data) else [sympy.Integer(d) for d in source.dims]
    attrs = imp.attrs()
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    imp.set_const(objects(imp.np, dims[slice(start, end)]))


@handles("Size")
def size(imp: ImportContext) -> None:
    source = imp.value(imp.node.input[0])
    dims = source.onnx_shape() if isinstance(source, Data) else [sympy.Integer(d) for d in source.dims]
    imp.set_const(objects(imp.np, [product(dims)]).reshape(()))


@handles("ConstantOfShape")
def constant_of_shape(imp: ImportContext) -> None:
    shape = imp.const(imp.node.input[0], "shape")
    attrs = imp.attrs()
    fill = imp.numpy_helper.to_array(attrs["value"]).reshape(-1)[0] if "value" in attrs else 0.0
    dims = [int_or_none(d) for d in shape.reshape(-1)]
    if any(d is None for d in dims):
        imp.set_output(Const((len(dims),), opaque="a ConstantOfShape of a symbolic shape (e.g. a zero initial state)"))
    else:
        imp.set_const(imp.np.full(dims, fill))


@handles("Range")
def range_(imp: ImportContext) -> None:
    start, limit, delta = (imp.const(i, "bound").reshape(()).item() for i in imp.node.input)
    if not all(isinstance(v, (int, float)) or getattr(v, "is_Integer", False) for v in (start, limit, delta)):
        imp.set_output(Const((0,), opaque="a Range with symbolic bounds"))
        return
    imp.set_const(imp.np.arange(int(start), int(limit), int(delta)))


@handles("Equal")
def equal(imp: ImportContext) -> None:
    const_binary(imp, lambda a, b: sympy.true if sympy.expand(a - b) == 0 else sympy.false)


@handles("Where")
def where(imp: ImportContext) -> None:
    cond, a, b = (imp.const(i) for i in imp.node.input)
    cond = imp.np.vectorize(lambda c: bool(c))(cond)
    imp.set_const(imp.np.where(cond, a, b))


def const_binary(imp: ImportContext, function: Any) -> None:
    """A binary op of two constants, elementwise (entries may be sympy expressions)."""
    a, b = imp.const(imp.node.input[0]), imp.const(imp.node.input[1])
    np = imp.np

    def apply(element_function: Any) -> Any:  # frompyfunc gives a bare scalar for 0-d inputs: keep arrays
        return np.asarray(np.frompyfunc(element_function, 2, 1)(a, b), dtype=object)

    if a.dtype == object or b.dtype == object:
        a, b = a.astype(object), b.astype(object)
        imp.set_const(apply(lambda x, y: function(sympy.sympify(x), sympy.sympify(y))))
    elif imp.node.op_type == "Equal":
        imp.set_const(apply(lambda x, y: bool(x == y)).astype(bool))
    else:
        imp.set_const(apply(lambda x, y: function(sympy.sympify(x), sympy.sympify(y))).astype(a.dtype))
