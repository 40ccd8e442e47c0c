"""What block builders hand to the dispatch model: variables, rows, node injections, costs, slacks.

The LP is assembled the way PyPSA/linopy do it, vectorised over assets and time steps: each block
adds flat-indexed Pyomo variables and describes its constraints as sparse coefficient triplets in
numpy, which become one Pyomo ``MatrixConstraint`` per row group (lb <= A x <= ub over the model's
global variable list). That skips Pyomo's per-constraint expression objects.

Numbers that change between rolling runs (forecasts, prices, limits, initial states) are mutable
Params created over whole arrays (:meth:`Assembly.param`). Builders refer to them as
:class:`ParamRef` — ``offset + scale x param[flat]`` element-wise — wherever a bound, right-hand
side, matrix coefficient or cost follows them. The Pyomo model holds those references as Param
expressions (a reader sees ``ev.charge[7].ub`` = ``ev.max_kw[0,7]``); the Assembly keeps the same
LP as numpy arrays (:class:`StandardForm`, in the row and column order of the model) together with
where each parameter goes, so that the hand-over to HiGHS and every later update are whole-array
operations instead of a walk over ~10^5 Pyomo objects. ``tests/models/test_handover.py`` checks the
arrays entry for entry against what Pyomo's standard-form compiler makes of the model.

Variables and rows that run along the horizon say so (``time``: the step of each element and whose
it is, see :func:`time_axis`); :meth:`StandardForm.shift_source` uses that to map a column or row
of this horizon to the one of a horizon that starts `k` steps earlier (a warm re-plan's basis, see
``models.highs``).

Units: injections are kW drawn from a node (positive = consumption); cost coefficients are EUR per
unit of the variable (already multiplied by dt_h for powers); slack amounts are value x scale in unit.
"""

from __future__ import annotations

import itertools
import math
import operator
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyomo.environ as pyo
from pyomo.core.base.constraint import Constraint
from pyomo.core.base.matrix_constraint import MatrixConstraint, _MatrixConstraintData
from pyomo.core.base.param import ParamData
from pyomo.core.expr.numeric_expr import LinearExpression
from pyomo.core.expr.relational_expr import inequality

if TYPE_CHECKING:
    from models.tables import Tables

#: computes a mutable parameter's values from the tables (the same function builds and refreshes it)
ParamSource = Callable[["Tables"], np.ndarray]


class LinearRow(_MatrixConstraintData):
    """One row of a :class:`LinearRows`, with the parts of Pyomo's constraint interface that the
    stock row type lacks in current Pyomo (``expr``, ``to_bounded_expression``), so that Pyomo's
    writers, its standard-form compiler and its solver interfaces read the rows like any other
    linear constraint."""

    __slots__ = ()

    def to_bounded_expression(self, evaluate_bounds: bool = False) -> tuple[Any, Any, Any]:
        lower, body, upper = self.lower, self.body, self.upper
        if evaluate_bounds:
            return self._evaluate_bound(lower, -math.inf), body, self._evaluate_bound(upper, math.inf)
        return lower, body, upper

    @property
    def equality(self) -> bool:
        lower, upper = self.lower, self.upper
        if lower is None or upper is None:
            return False
        return lower is upper or (lower.__class__ is float and upper.__class__ is float and lower == upper)

    @property
    def expr(self) -> Any:
        lower, body, upper = self.to_bounded_expression()
        if self.equality:
            return body == upper
        if lower is not None and upper is not None:
            return inequality(lower, body, upper)
        if lower is not None:
            return body >= lower
        return body <= upper if upper is not None else None


class LinearRows(MatrixConstraint):
    """Pyomo's MatrixConstraint (lb <= A x <= ub, A in CSR) made of :class:`LinearRow` rows, with
    the iteration signature that current Pyomo blocks call (``values(sort)``); the stock class only
    has Mapping's."""

    def construct(self, data: Any = None) -> None:
        self._constructed = True  # the row objects are made when first asked for (`_data`)

    @property
    def _data(self) -> tuple[LinearRow, ...]:
        """The row objects, made on first use: the LP itself is the CSR arrays; a reader, a writer
        or a solver interface that walks the rows gets ordinary constraint data objects."""
        rows = self.__dict__.get("_rows")
        if rows is None:
            ref = weakref.ref(self)
            rows = self.__dict__["_rows"] = tuple(LinearRow(i, ref) for i in range(len(self._lower)))
        return rows

    @_data.setter
    def _data(self, value: Any) -> None:  # IndexedComponent.__init__ sets an empty dict first
        self.__dict__.pop("_rows", None)

    def __len__(self) -> int:
        return len(self._lower)

    def keys(self, sort: Any = None, ordered: Any = None) -> Any:
        return range(len(self._lower))

    def values(self, sort: Any = None, ordered: Any = None) -> Any:
        return iter(self._data)

    def items(self, sort: Any = None, ordered: Any = None) -> Any:
        return enumerate(self._data)


class ArrayParam:
    """A mutable Pyomo Param over a whole array (``component[i, j]`` for an (I, J) array) and the
    function that computes its values from the tables. Indexing it (numpy-style, on the array's
    shape) gives a :class:`ParamRef` to those elements, flattened in row-major order."""

    def __init__(self, component: Any, source: ParamSource, values: np.ndarray, number: int) -> None:
        self.component = component
        self.source = source
        self.shape = values.shape
        self.values = values.ravel()  # as built or last refreshed (`read` gets them from the model)
        self.number = number  # position in Assembly.params
        self.data: list[ParamData] = list(component._data.values())

    @property
    def size(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Any) -> ParamRef:
        flat = np.arange(self.size).reshape(self.shape)[index]
        return ParamRef(self, np.asarray(flat).ravel())

    def all(self) -> ParamRef:
        """Every element, row-major."""
        return ParamRef(self, np.arange(self.size))

    def read(self) -> np.ndarray:
        """The Params' current values (flat), as set by a refresh or by hand on the Pyomo model."""
        return np.fromiter(map(_VALUE, self.data), dtype=float, count=len(self.data))

    def write(self, values: np.ndarray) -> None:
        for d, v in zip(self.data, values.tolist(), strict=True):
            d._value = v  # the slot behind set_value: a float is always a valid value of this Param
        self.values = values


_VALUE = operator.attrgetter("_value")  # the slot behind ParamData.value


class ParamRef:
    """``offset + scale x param[flat]`` element-wise: bounds, right-hand sides, coefficients or costs
    that follow a mutable parameter. Supports ``-ref``, ``ref * k``, ``ref + c``, ``c - ref`` and
    indexing (numbers or arrays of the same length)."""

    __slots__ = ("flat", "offset", "param", "scale")
    __array_ufunc__ = None  # ``array - ref`` is ``ref.__rsub__(array)``, not an object array

    def __init__(self, param: ArrayParam, flat: np.ndarray, scale: Any = 1.0, offset: Any = 0.0) -> None:
        self.param = param
        self.flat = flat
        n = len(flat)
        self.scale = np.broadcast_to(np.asarray(scale, dtype=float), (n,))
        self.offset = np.broadcast_to(np.asarray(offset, dtype=float), (n,))

    def __len__(self) -> int:
        return len(self.flat)

    def __getitem__(self, index: Any) -> ParamRef:
        return ParamRef(self.param, self.flat[index], self.scale[index], self.offset[index])

    def __mul__(self, k: Any) -> ParamRef:
        k = np.asarray(k, dtype=float)
        return ParamRef(self.param, self.flat, self.scale * k, self.offset * k)

    __rmul__ = __mul__

    def __neg__(self) -> ParamRef:
        return self * -1.0

    def __add__(self, c: Any) -> ParamRef:
        return ParamRef(self.param, self.flat, self.scale, self.offset + np.asarray(c, dtype=float))

    __radd__ = __add__

    def __sub__(self, c: Any) -> ParamRef:
        return self + (-np.asarray(c, dtype=float))

    def __rsub__(self, c: Any) -> ParamRef:
        return -self + c

    def evaluate(self, param_values: np.ndarray) -> np.ndarray:
        """The numbers, given the parameter's flat values."""
        return self.offset + self.scale * param_values[self.flat]

    def pyomo(self) -> list[Any]:
        """The elements as Pyomo objects: the ParamData itself, or offset + scale x ParamData."""
        data = self.param.data
        objects = [data[i] for i in self.flat.tolist()]
        if not self.offset.any() and (self.scale == 1.0).all():
            return objects
        return [_affine(o, s, p) for o, s, p in zip(self.offset.tolist(), self.scale.tolist(), objects, strict=True)]


def _affine(offset: float, scale: float, p: ParamData) -> Any:
    term = p if scale == 1.0 else scale * p
    return term if offset == 0.0 else offset + term


class Values:
    """n numbers (NaN: no bound), some of which follow mutable parameters: ``links`` holds
    (positions, ParamRef) pairs. Built from a number, None, a float array, a ParamRef or a Values."""

    __slots__ = ("links", "numbers")

    def __init__(self, numbers: np.ndarray, links: list[tuple[np.ndarray, ParamRef]] | None = None) -> None:
        self.numbers = numbers
        self.links = links or []

    @classmethod
    def of(cls, value: Any, n: int) -> Values:
        if isinstance(value, Values):
            if len(value.numbers) != n:
                raise ValueError(f"{len(value.numbers)} values for {n} places")
            return value
        if isinstance(value, ParamRef):
            if len(value) != n:
                raise ValueError(f"{len(value)} values for {n} places")
            return cls(value.evaluate(value.param.values), [(np.arange(n), value)])
        if value is None:
            return cls(np.full(n, np.nan))
        numbers = np.asarray(value, dtype=float)
        if numbers.ndim == 0:
            return cls(np.full(n, float(numbers)))
        if numbers.size != n:
            raise ValueError(f"{numbers.size} values for {n} places")
        return cls(numbers.ravel().copy())

    def put(self, positions: Any, ref: ParamRef) -> Values:
        """Let the numbers at `positions` follow `ref` (same length); returns self."""
        positions = np.asarray(positions, dtype=np.int64).ravel()
        self.numbers[positions] = ref.evaluate(ref.param.values)
        self.links.append((positions, ref))
        return self

    def pyomo(self) -> list[Any]:
        """As Pyomo bounds: floats, None (no bound) and Param expressions."""
        out = _as_bounds(self.numbers)
        for pos, ref in self.links:
            for p, obj in zip(pos.tolist(), ref.pyomo(), strict=True):
                out[p] = obj
        return out

    def uniform(self) -> float | bool | None:
        """The single number every entry has (None: all NaN), or False."""
        if self.links or not len(self.numbers):
            return False if self.links else None
        first = self.numbers[0]
        if np.isnan(first):
            return None if np.isnan(self.numbers).all() else False
        return float(first) if (self.numbers == first).all() else False


def _as_bounds(numbers: np.ndarray) -> list[Any]:
    """Floats, None for NaN."""
    missing = np.isnan(numbers)
    if missing.all():
        return [None] * len(numbers)
    out: list[Any] = numbers.tolist()
    if missing.any():
        out = [None if v != v else v for v in out]
    return out


@dataclass
class Link:
    """Entries ``target[positions] (+)= ref`` of one array of the standard form."""

    positions: np.ndarray
    ref: ParamRef


#: the time layout of a variable or row group: (entity, step) of each element (None: no time axis)
TimeAxis = tuple[np.ndarray, np.ndarray]


def time_axis(time: Any, n: int) -> TimeAxis | None:
    """The (entity, step) of each of `n` elements: `time` is None (no time axis), an int L (the
    elements are entity-major with L steps each: flat = entity x L + step) or an (entity, step)
    pair of arrays."""
    if time is None:
        return None
    if isinstance(time, tuple):
        entity, step = (np.asarray(a, dtype=np.int64).ravel() for a in time)
        if len(entity) != n or len(step) != n:
            raise ValueError(f"a time axis of {len(entity)}/{len(step)} elements for {n}")
        return entity, step
    steps = int(time)
    if steps <= 0 or n % steps:
        raise ValueError(f"{n} elements are not whole runs of {steps} steps")
    return np.repeat(np.arange(n // steps), steps), np.tile(np.arange(steps), n // steps)


def runs_of_steps(steps: list[np.ndarray]) -> TimeAxis:
    """(entity, step) of elements given as chunks of steps: an entity is a run of increasing steps
    inside one chunk (e.g. one device's columns, an EV charger's sessions one after another)."""
    if not steps:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    step = np.concatenate(steps).astype(np.int64)
    new = np.ones(len(step), dtype=bool)
    new[1:] = step[1:] <= step[:-1]
    starts = np.cumsum([0, *[len(c) for c in steps[:-1]]])
    new[starts[starts < len(step)]] = True
    return np.cumsum(new) - 1, step


@dataclass
class RowGroup:
    """Rows lower <= A x <= upper collected as COO triplets until the model is finalised."""

    block: Any
    name: str
    lower: Values
    upper: Values
    time: TimeAxis | None = None
    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    coefs: list[np.ndarray] = field(default_factory=list)
    coef_links: list[tuple[int, ParamRef]] = field(default_factory=list)  # (first triplet, ref)
    n_triplets: int = 0

    def __len__(self) -> int:
        return len(self.lower.numbers)

    def add(self, rows: Any, cols: Any, coefs: Any) -> None:
        """Add coefficients (broadcast to a common shape); `coefs` may be a ParamRef (mutable
        coefficients, one per entry in row-major order of the broadcast rows and columns)."""
        if isinstance(coefs, ParamRef):
            r, c = np.broadcast_arrays(np.asarray(rows), np.asarray(cols))
            if r.size != len(coefs):
                raise ValueError(f"{len(coefs)} coefficients for {r.size} entries")
            self.coef_links.append((self.n_triplets, coefs))
            k = coefs.evaluate(coefs.param.values)
        else:
            r, c, k = np.broadcast_arrays(np.asarray(rows), np.asarray(cols), np.asarray(coefs, dtype=float))
        self.rows.append(r.ravel())
        self.cols.append(c.ravel())
        self.coefs.append(k.ravel())
        self.n_triplets += r.size


@dataclass
class StandardForm:
    """The LP as arrays, in the model's row and column order: costs, column and row bounds
    (+-inf: none) and the matrix row-wise (CSR); ``links`` say which entries follow which mutable
    parameters (targets "col_lower", "col_upper", "row_lower", "row_upper", "cost", "coef"), and
    ``row_start`` where each constraint component's rows begin."""

    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    row_start: dict[int, int]
    links: dict[str, list[Link]]
    base_cost: np.ndarray  # the numeric part of the costs (links add to it)
    #: (entity, step) of every column and row along the horizon (entity -1: no time axis); entities
    #: are numbered across the whole LP
    col_time: TimeAxis | None = None
    row_time: TimeAxis | None = None

    @property
    def num_col(self) -> int:
        return len(self.cost)

    @property
    def num_row(self) -> int:
        return len(self.row_lower)

    def shift_source(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For a horizon that starts `k` steps after this LP's: for each column and row, the one of
        this LP that stands for the same entity and time, (entity, t + k), or for the entity's
        last step where t + k is past it; elements without a time axis stand for themselves.
        Returns (column sources, row sources)."""
        return _shift(self.col_time, self.num_col, k), _shift(self.row_time, self.num_row, k)

    def coef_rows(self, positions: np.ndarray) -> np.ndarray:
        """Row of each matrix entry at `positions` (CSR data positions)."""
        return np.searchsorted(self.indptr, positions, side="right") - 1

    def evaluate(self, values: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
        """Every linked array anew from parameter values {param number: flat values}."""
        out = {
            "col_lower": self.col_lower.copy(),
            "col_upper": self.col_upper.copy(),
            "row_lower": self.row_lower.copy(),
            "row_upper": self.row_upper.copy(),
            "cost": self.base_cost.copy(),
            "coef": self.data.copy(),
        }
        for target, links in self.links.items():
            arr = out[target]
            infinite = -np.inf if target.endswith("lower") else np.inf
            for link in links:
                v = link.ref.evaluate(values[link.ref.param.number])
                if target == "cost":
                    np.add.at(arr, link.positions, v)
                else:
                    arr[link.positions] = v if target == "coef" else np.where(np.isnan(v), infinite, v)
        return out


def _shift(time: TimeAxis | None, n: int, k: int) -> np.ndarray:
    source = np.arange(n)
    if time is None or not n:
        return source
    entity, step = time
    timed = np.flatnonzero(entity >= 0)
    if not len(timed):
        return source
    e, t = entity[timed].astype(np.int64), step[timed].astype(np.int64)
    last = np.full(int(e.max()) + 1, -1, dtype=np.int64)
    np.maximum.at(last, e, t)
    want = np.minimum(t + k, last[e])
    # most groups lay out each entity's steps one after another: the wanted element is then
    # (want - t) places further on; the others are looked up among their entities' elements
    guess = np.minimum(timed + (want - t), n - 1)
    hit = (entity[guess] == e) & (step[guess] == want)
    source[timed[hit]] = guess[hit]
    if hit.all():
        return source
    among = np.isin(e, np.unique(e[~hit]))
    span = int(t.max()) + k + 2
    keys = e[among] * span + t[among]
    order = np.argsort(keys, kind="stable")
    lost = np.flatnonzero(~hit)
    at = np.minimum(np.searchsorted(keys[order], e[lost] * span + want[lost]), len(order) - 1)
    found = keys[order][at] == e[lost] * span + want[lost]
    source[timed[lost[found]]] = timed[np.flatnonzero(among)[order[at[found]]]]
    return source


@dataclass
class SlackTable:
    kind: list[str] = field(default_factory=list)
    asset: list[str] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    steps: list[np.ndarray] = field(default_factory=list)
    unit: list[str] = field(default_factory=list)
    scale: list[np.ndarray] = field(default_factory=list)
    cost: list[np.ndarray] = field(default_factory=list)


class Assembly:
    """Global variable list, row groups, node injections, objective terms and slacks of one model."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.params: list[ArrayParam] = []
        self.columns: list[Any] = []
        self._col_lower: list[Values] = []
        self._col_upper: list[Values] = []
        self._col_start: list[int] = []
        self._col_time: list[tuple[int, TimeAxis]] = []  # (first column, time axis) of timed groups
        self.groups: list[RowGroup] = []
        self._inj: list[tuple[np.ndarray, ...]] = []
        self._cost_cols: list[np.ndarray] = []
        self._cost_coefs: list[np.ndarray] = []
        self._param_costs: list[tuple[np.ndarray, ParamRef]] = []
        self._lower_overrides: list[tuple[np.ndarray, Values]] = []
        self.slacks: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, str, float, float]] = []
        self._slack_steps: list[tuple[int, ParamSource | None, ParamSource | None]] = []
        self.form: StandardForm | None = None

    # --- variables ---------------------------------------------------------------------------------

    def var(self, block: Any, name: str, n: int, lb: Any = 0.0, ub: Any = None, time: Any = None) -> np.ndarray:
        """Add `n` variables as ``block.<name>[0..n-1]`` with bounds (a number, None, a float array
        with NaN for none, a ParamRef or a Values) and their time layout (see :func:`time_axis`);
        return their global column numbers."""
        lower, upper = Values.of(lb, n), Values.of(ub, n)
        axis = time_axis(time, n)
        scalar_lb, scalar_ub = lower.uniform(), upper.uniform()
        index = pyo.RangeSet(0, n - 1) if n else pyo.Set(initialize=[])
        var = pyo.Var(
            index,
            dense=False,
            bounds=(None if scalar_lb is False else scalar_lb, None if scalar_ub is False else scalar_ub),
        )
        setattr(block, name, var)
        data: list[Any] = []
        if n:
            # Pyomo makes the first VarData (domain and bounds validated); the others are copies of
            # it with their own index and bounds: what Pyomo's dense construction does, in one pass
            # with the bounds (the slots behind setlb/setub, which store a float, None or a Param
            # expression as given)
            first = var[0]
            copy = first.__class__.copy
            lows = [first._lb] * n if scalar_lb is not False else lower.pyomo()
            ups = [first._ub] * n if scalar_ub is not False else upper.pyomo()
            store = var._data
            for i, low, up in zip(range(n), lows, ups, strict=True):
                v = copy(first) if i else first
                v._index, v._lb, v._ub = i, low, up
                store[i] = v
                data.append(v)
        var._dense = True
        start = len(self.columns)
        self.columns.extend(data)
        self._col_lower.append(lower)
        self._col_upper.append(upper)
        self._col_start.append(start)
        if axis is not None:
            self._col_time.append((start, axis))
        return np.arange(start, start + n)

    def set_lower(self, cols: np.ndarray, lb: Any) -> None:
        """Raise the lower bounds of existing columns to `lb` (numbers or a ParamRef)."""
        cols = np.asarray(cols, dtype=np.int64)
        lower = Values.of(lb, len(cols))
        for col, b in zip(cols.tolist(), lower.pyomo(), strict=True):
            self.columns[col]._lb = b
        self._lower_overrides.append((cols, lower))

    # --- mutable parameters ----------------------------------------------------------------------------

    def param(self, block: Any, name: str, source: ParamSource) -> ArrayParam:
        """Add ``block.<name>``, a mutable Param indexed like the array ``source(tables)`` returns
        (a 0-d array is not allowed), and remember `source` so that :meth:`refresh` can set it anew."""
        values = np.asarray(source(self.tables), dtype=float)
        param = pyo.Param(*[range(n) for n in values.shape], mutable=True)
        setattr(block, name, param)
        # Pyomo's initialisation validates every key and value one by one (10x the cost of the
        # ParamData objects themselves); the keys are the index set's own, in its order. The three
        # slots are exactly what ParamData.__init__ sets (owner, index, value)
        data = param._data
        owner = weakref.ref(param)
        new = ParamData.__new__
        for key, v in zip(_keys(values.shape), values.ravel().tolist(), strict=True):
            d = new(ParamData)
            d._component, d._index, d._value = owner, key, v
            data[key] = d
        handle = ArrayParam(param, source, values, len(self.params))
        self.params.append(handle)
        return handle

    def refresh(self, tables: Tables) -> None:
        """Set every mutable parameter from `tables` (same structure as the model was built for);
        a parameter whose shape changed raises ValueError."""
        for param in self.params:
            values = np.asarray(param.source(tables), dtype=float).ravel()
            if len(values) != param.size:
                raise ValueError(f"{param.component.name}: {len(values)} values for {param.size} parameters")
            param.write(values)
        for i, steps_source, assets_source in self._slack_steps:
            kind, assets, cols, steps, unit, scale, cost = self.slacks[i]
            if steps_source is not None:
                steps = np.asarray(steps_source(tables)).ravel()
            if assets_source is not None:
                assets = np.asarray(assets_source(tables), dtype=object).ravel()
            self.slacks[i] = (kind, assets, cols, steps, unit, scale, cost)
        self.tables = tables

    def param_values(self) -> dict[int, np.ndarray]:
        """Current values of every mutable parameter, read from the Pyomo model."""
        return {p.number: p.read() for p in self.params}

    # --- rows ------------------------------------------------------------------------------------------

    def rows(self, block: Any, name: str, lower: Any, upper: Any, n: int | None = None, time: Any = None) -> RowGroup:
        """Start a group of rows named ``block.<name>`` (as many as `lower` has, or `n`) with their
        time layout (see :func:`time_axis`); fill it with `RowGroup.add`."""
        if n is None:
            n = _length(lower) if _length(lower) is not None else _length(upper)
        if n is None:
            raise ValueError(f"{name}: the number of rows is not given")
        group = RowGroup(block, name, Values.of(lower, n), Values.of(upper, n), time_axis(time, n))
        self.groups.append(group)
        return group

    def equal(self, block: Any, name: str, rhs: Any, time: Any = None) -> RowGroup:
        n = _length(rhs)
        value = Values.of(rhs, n if n is not None else 0)
        return self.rows(block, name, value, value, len(value.numbers), time)

    # --- node injections, costs, slacks -----------------------------------------------------------------

    def inject(self, node: Any, feeder: Any, t: Any, coef: Any, cols: Any) -> None:
        """Register coef x var kW drawn from connection `node` (and `feeder` if >= 0) at step t."""
        arrays = np.broadcast_arrays(
            np.asarray(node), np.asarray(feeder), np.asarray(t), np.asarray(coef, dtype=float), np.asarray(cols)
        )
        self._inj.append(tuple(a.ravel() for a in arrays))

    def injections(self) -> tuple[np.ndarray, ...]:
        """(node, feeder, t, coef, col) of every registered injection."""
        if not self._inj:
            return tuple(np.zeros(0, dtype=int if i != 3 else float) for i in range(5))
        return tuple(np.concatenate([part[i] for part in self._inj]) for i in range(5))

    def cost(self, cols: Any, coefs: Any) -> None:
        """Add coef x var EUR to the objective (numbers, or a ParamRef: a mutable coefficient)."""
        if isinstance(coefs, ParamRef):
            cols = np.asarray(cols, dtype=np.int64).ravel()
            if len(cols) != len(coefs):
                raise ValueError(f"{len(coefs)} costs for {len(cols)} columns")
            self._param_costs.append((cols, coefs))
            return
        c, k = np.broadcast_arrays(np.asarray(cols), np.asarray(coefs, dtype=float))
        self._cost_cols.append(c.ravel())
        self._cost_coefs.append(k.ravel())

    def slack(
        self,
        kind: str,
        assets: Any,
        cols: Any,
        steps: Any,
        unit: str,
        scale: float,
        penalty: float,
        steps_source: ParamSource | None = None,
        assets_source: ParamSource | None = None,
    ) -> None:
        """Register penalised slacks: each costs penalty x scale EUR per unit of the variable and is
        reported as a violation of value x scale `unit` at `steps` (-1: not tied to one interval;
        `steps_source` computes them anew from refreshed tables when they depend on the data, and
        `assets_source` the assets: an EV slot holds another session after a refresh)."""
        a, c, s = np.broadcast_arrays(np.asarray(assets, dtype=object), np.asarray(cols), np.asarray(steps))
        if steps_source is not None or assets_source is not None:
            self._slack_steps.append((len(self.slacks), steps_source, assets_source))
        self.slacks.append((kind, a.ravel(), c.ravel(), s.ravel(), unit, scale, penalty * scale))
        self.cost(c.ravel(), penalty * scale)

    # --- finalise ----------------------------------------------------------------------------------------

    def finalize(self, m: pyo.ConcreteModel) -> None:
        """Create every row group as a MatrixConstraint over the global variable list, set the
        objective (minimise) and the standard form (:attr:`form`) in the model's order."""
        x = tuple(self.columns)
        sorted_groups: dict[int, tuple[RowGroup, np.ndarray, np.ndarray, np.ndarray, list[Link]]] = {}
        for g in self.groups:
            n = len(g)
            rows = np.concatenate(g.rows) if g.rows else np.zeros(0, dtype=np.int64)
            cols = np.concatenate(g.cols) if g.cols else np.zeros(0, dtype=np.int64)
            coefs = np.concatenate(g.coefs) if g.coefs else np.zeros(0)
            order = np.lexsort((cols, rows))
            rows, cols, coefs = rows[order], cols[order], coefs[order]
            indptr = np.searchsorted(rows, np.arange(n + 1))
            coef_links = []
            data: Any = coefs
            if g.coef_links:
                where = np.empty(len(order), dtype=np.int64)
                where[order] = np.arange(len(order))  # sorted position of each added triplet
                data = coefs.tolist()
                for first, ref in g.coef_links:
                    positions = where[first : first + len(ref)]
                    coef_links.append(Link(positions, ref))
                    for p, obj in zip(positions.tolist(), ref.pyomo(), strict=True):
                        data[p] = obj
            lower = g.lower.pyomo()
            upper = lower if g.upper is g.lower else g.upper.pyomo()  # equality rows: one list
            comp = LinearRows(data, cols, indptr, lower, upper, x)
            setattr(g.block, g.name, comp)
            sorted_groups[id(comp)] = (g, indptr, cols, coefs, coef_links)
        self.form = self._standard_form(m, sorted_groups)
        self._objective(m, x)

    def _standard_form(
        self, m: pyo.ConcreteModel, groups: dict[int, tuple[RowGroup, np.ndarray, np.ndarray, np.ndarray, list[Link]]]
    ) -> StandardForm:
        targets = ("col_lower", "col_upper", "row_lower", "row_upper", "cost", "coef")
        links: dict[str, list[Link]] = {t: [] for t in targets}
        n_cols = len(self.columns)
        col_lower, col_upper = np.empty(n_cols), np.empty(n_cols)
        for start, lower, upper in zip(self._col_start, self._col_lower, self._col_upper, strict=True):
            for arr, values, target in ((col_lower, lower, "col_lower"), (col_upper, upper, "col_upper")):
                arr[start : start + len(values.numbers)] = values.numbers
                links[target] += [Link(start + pos, ref) for pos, ref in values.links]
        if self._lower_overrides:
            raised = np.zeros(n_cols, dtype=bool)
            for cols, _ in self._lower_overrides:
                raised[cols] = True
            links["col_lower"] = [_without(link, raised) for link in links["col_lower"]]
            for cols, lower in self._lower_overrides:
                col_lower[cols] = lower.numbers
                links["col_lower"] += [Link(cols[pos], ref) for pos, ref in lower.links]
        # rows in the order Pyomo lists the constraint components (the model's own order)
        row_start: dict[int, int] = {}
        lowers, uppers, indptrs, indices, data = [], [], [], [], []
        row_entity: list[np.ndarray] = []
        row_step: list[np.ndarray] = []
        entities = 0  # timed entities so far (numbered across rows)
        n_rows = nnz = 0
        for comp in m.component_objects(Constraint, descend_into=True):
            g, indptr, cols, coefs, coef_links = groups[id(comp)]
            row_start[id(comp)] = n_rows
            lowers.append(g.lower.numbers)
            uppers.append(g.upper.numbers)
            links["row_lower"] += [Link(n_rows + pos, ref) for pos, ref in g.lower.links]
            links["row_upper"] += [Link(n_rows + pos, ref) for pos, ref in g.upper.links]
            links["coef"] += [Link(nnz + link.positions, link.ref) for link in coef_links]
            if g.time is None:
                row_entity.append(np.full(len(g), -1, dtype=np.int64))
                row_step.append(np.zeros(len(g), dtype=np.int64))
            else:
                row_entity.append(g.time[0] + entities)
                row_step.append(g.time[1])
                entities += int(g.time[0].max()) + 1 if len(g) else 0
            indptrs.append(indptr[:-1] + nnz)
            indices.append(cols)
            data.append(coefs)
            n_rows += len(g)
            nnz += len(cols)
        cost = np.zeros(n_cols)
        if self._cost_cols:
            np.add.at(cost, np.concatenate(self._cost_cols), np.concatenate(self._cost_coefs))
        links["cost"] = [Link(cols, ref) for cols, ref in self._param_costs]
        form = StandardForm(
            cost=cost,
            col_lower=np.where(np.isnan(col_lower), -np.inf, col_lower),
            col_upper=np.where(np.isnan(col_upper), np.inf, col_upper),
            row_lower=_concat(lowers, -np.inf),
            row_upper=_concat(uppers, np.inf),
            indptr=np.concatenate([*indptrs, [nnz]]).astype(np.int64),
            indices=np.concatenate(indices).astype(np.int64) if indices else np.zeros(0, dtype=np.int64),
            data=np.concatenate(data) if data else np.zeros(0),
            row_start=row_start,
            links=links,
            base_cost=cost.copy(),
            col_time=self._column_time(n_cols),
            row_time=(_concat_int(row_entity), _concat_int(row_step)),
        )
        for link in links["cost"]:
            np.add.at(form.cost, link.positions, link.ref.evaluate(link.ref.param.values))
        return form

    def _column_time(self, n_cols: int) -> TimeAxis:
        entity = np.full(n_cols, -1, dtype=np.int32)  # kept with the model: 8 bytes a column
        step = np.zeros(n_cols, dtype=np.int32)
        entities = 0
        for start, (e, t) in self._col_time:
            entity[start : start + len(e)] = e + entities
            step[start : start + len(t)] = t
            entities += int(e.max()) + 1 if len(e) else 0
        return entity, step

    def _objective(self, m: pyo.ConcreteModel, x: tuple[Any, ...]) -> None:
        """One term per variable with a cost: its number, plus its mutable parts as expressions."""
        assert self.form is not None
        total = self.form.base_cost
        mutable: dict[int, Any] = {}
        for cols, ref in self._param_costs:
            for c, obj in zip(cols.tolist(), ref.pyomo(), strict=True):
                mutable[c] = mutable[c] + obj if c in mutable else obj
        numeric = total != 0
        numeric[list(mutable)] = False
        used = np.flatnonzero(numeric)
        coefs: list[Any] = total[used].tolist()
        for c, expr in mutable.items():
            coefs.append(expr + float(total[c]) if total[c] else expr)
        variables = [x[c] for c in used.tolist()] + [x[c] for c in mutable]
        m.objective = pyo.Objective(
            expr=LinearExpression(constant=0.0, linear_coefs=coefs, linear_vars=variables), sense=pyo.minimize
        )

    def row_range(self, component: Any) -> range:
        """HiGHS rows of a constraint component."""
        assert self.form is not None
        start = self.form.row_start[id(component)]
        return range(start, start + len(component))


def _without(link: Link, dropped: np.ndarray) -> Link:
    """`link` without the columns where the boolean array `dropped` is set."""
    keep = ~dropped[link.positions]
    return link if keep.all() else Link(link.positions[keep], link.ref[keep])


def _concat(parts: list[np.ndarray], infinite: float) -> np.ndarray:
    out = np.concatenate(parts) if parts else np.zeros(0)
    return np.where(np.isnan(out), infinite, out)


def _concat_int(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, dtype=np.int32)


def _length(value: Any) -> int | None:
    if isinstance(value, Values):
        return len(value.numbers)
    if isinstance(value, ParamRef):
        return len(value)
    if value is None or np.ndim(value) == 0:
        return None
    return int(np.asarray(value).size)


def _keys(shape: tuple[int, ...]) -> list[Any]:
    """Param index keys in row-major order: ints for 1-d, tuples otherwise."""
    if len(shape) == 1:
        return list(range(shape[0]))
    return list(itertools.product(*(range(n) for n in shape)))
