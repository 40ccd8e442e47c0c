"""Plan a site again on the model of its previous run when only the numbers changed.

A built dispatch model holds forecasts, prices, limits, initial states, when EV sessions are plugged
in and the requested profiles of devices without a contract as mutable Params (``Assembly.param``);
everything else in it (which variables and rows exist, their fixed coefficients) follows from the
rest of the tables. The structure key hashes exactly that rest, plus what the builders derive from
it (the steps where heat can go unmet). Equal keys: refresh the Params from the new tables and
re-solve with the same HiGHS instance, which starts from its last basis, shifted in time by as many
steps as the new horizon starts after the kept one (``models.highs``). Different keys (more EV
sessions at one charger than it has slots, an edited site, another horizon length, heat demand near a
heat pump's capacity at other steps): build anew. Results are the same either way (tests compare the
refreshed LP with a fresh build).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from grid.domain import Site
from grid.series import SiteInputs
from models.blocks.heat_pump import needs_unmet_slack
from models.dispatch import DispatchModel
from models.highs import PersistentHighs
from models.plan import Plan
from models.solve import SolveOptions, solve_tables
from models.tables import Tables, build_tables

#: table fields the model holds only as mutable Params (or does not use at all): not structure
PARAM_FIELDS = frozenset(
    {
        "index",
        "connections.fixed_load_kw",
        "connections.feeder_fixed_load_kw",
        "connections.limit_import_kw",
        "connections.limit_export_kw",
        "connections.reserve_kw",
        "pv.available_kw",
        "batteries.initial_kwh",
        "batteries.request_charge_kw",
        "batteries.request_discharge_kw",
        "heat_pumps.cop",
        "heat_pumps.heat_demand_kw",
        "heat_pumps.initial_kwh",
        "heat_pumps.request_kw",
        "ev.availability",
        "ev.session_ids",
        "ev.capacity_kwh",
        "ev.initial_kwh",
        "ev.needed_kwh",
        "ev.arrival_s",
        "ev.departure_s",
        "ev.v2g_consent",
        "ev.departure_step",
        "ev.departs_in_horizon",
        "ev.request_kw",
        "prices.import_eur_per_kwh",
        "prices.energy_eur_per_kwh",
        "prices.grid_fee_eur_per_kwh",
        "prices.feed_in_eur_per_kwh",
        "prices.co2_g_per_kwh",
        "prices.co2_eur_per_kwh",
        "prices.spot_eur_per_kwh",
        "pv.unpaid",
    }
)


def structure_key(tables: Tables) -> str:
    """A digest of everything in `tables` that shapes the model (see the module docstring)."""
    h = hashlib.sha256()
    bats = tables.batteries  # an "end where you started" target is the initial_kwh Param: no structure
    terminal = np.where(bats.terminal_is_initial, -1.0, bats.terminal_kwh)
    _feed(h, "", dataclasses.replace(tables, batteries=dataclasses.replace(bats, terminal_kwh=terminal)))
    _feed(h, "derived", needs_unmet_slack(tables.heat_pumps))
    return h.hexdigest()


def horizon_shift(kept: pd.DatetimeIndex, new: pd.DatetimeIndex) -> int:
    """Steps the horizon `new` starts after `kept` (same length and resolution, the structure key
    says so); 0 when it does not start a whole number of steps later inside `kept`."""
    if len(kept) < 2 or len(new) != len(kept):
        return 0
    step = kept[1] - kept[0]
    moved = new[0] - kept[0]
    k, rest = divmod(moved, step)
    return int(k) if rest == pd.Timedelta(0) and 0 < k < len(kept) else 0


def _feed(h: Any, path: str, value: Any) -> None:
    if path in PARAM_FIELDS:
        return
    h.update(path.encode())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _feed(h, f"{path}.{f.name}" if path else f.name, getattr(value, f.name))
    elif isinstance(value, np.ndarray) and value.dtype != object:
        h.update(f"{value.dtype}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, list | tuple):
        h.update(f"[{len(value)}]".encode())
        for i, item in enumerate(value):
            _feed(h, f"{path}[{i}]", item)
    elif hasattr(value, "model_dump"):  # pydantic settings (penalties)
        h.update(repr(value.model_dump()).encode())
    else:
        h.update(repr(value.tolist() if isinstance(value, np.ndarray) else value).encode())


@dataclasses.dataclass
class _Kept:
    key: str
    model: DispatchModel
    solver: PersistentHighs


class WarmPlanner:
    """A planner (``plan_site``'s signature) that keeps each site's last model and re-uses it
    when the structure key matches. One run per site at a time (the caller's per-site lock)."""

    def __init__(self, shift: bool = True) -> None:
        self._kept: dict[str, _Kept] = {}
        self._lock = threading.Lock()
        #: shift the kept basis in time when the horizon moved (False: the basis as it was)
        self.shift = shift
        self.warm_runs = 0
        self.cold_runs = 0
        self.shifted_runs = 0  # warm runs that started from a shifted basis

    def __call__(
        self, site: Site, inputs: SiteInputs, index: pd.DatetimeIndex, options: SolveOptions | None = None
    ) -> Plan:
        t0 = time.perf_counter()
        tables = build_tables(site, inputs, index)
        key = structure_key(tables)
        tables_s = time.perf_counter() - t0
        with self._lock:
            kept = self._kept.pop(site.id, None)
        if kept is not None and kept.key == key:
            shift = horizon_shift(kept.model.tables.index, tables.index) if self.shift else 0
            plan, dm, outcome = solve_tables(tables, options, warm=(kept.model, kept.solver), shift=shift)
            if outcome.ok:
                self.warm_runs += 1
                self.shifted_runs += outcome.shifted
                self._keep(site.id, key, dm, outcome.solver)
                plan.timings_s = {"tables_s": tables_s, **plan.timings_s}
                return plan
            # a warm solve that did not finish is repeated from scratch (fresh instance, presolve)
        plan, dm, outcome = solve_tables(tables, options)
        self.cold_runs += 1
        if outcome.ok:
            self._keep(site.id, key, dm, outcome.solver)
        plan.timings_s = {"tables_s": tables_s, **plan.timings_s}
        return plan

    def _keep(self, site_id: str, key: str, dm: DispatchModel, solver: PersistentHighs) -> None:
        with self._lock:
            self._kept[site_id] = _Kept(key, dm, solver)

    def kept_dimensions(self, site_id: str) -> tuple[int, int] | None:
        """(columns, rows) of the LP kept for `site_id`, None when none is kept."""
        with self._lock:
            kept = self._kept.get(site_id)
        if kept is None:
            return None
        return int(kept.solver.highs.getNumCol()), int(kept.solver.highs.getNumRow())

    def forget(self, site_id: str | None = None) -> None:
        """Drop the kept model of one site (or of all)."""
        with self._lock:
            if site_id is None:
                self._kept.clear()
            else:
                self._kept.pop(site_id, None)


_PROCESS_PLANNER = WarmPlanner()


def plan_site_warm(
    site: Site, inputs: SiteInputs, index: pd.DatetimeIndex, options: SolveOptions | None = None
) -> Plan:
    """:class:`WarmPlanner` of this process (picklable by name, so a solver worker process keeps
    its own models between runs)."""
    return _PROCESS_PLANNER(site, inputs, index, options)
