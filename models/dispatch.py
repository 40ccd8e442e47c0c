"""Assemble the dispatch LP for a site over a horizon from the per-asset block builders.

Per connection c and step t (kW, positive = drawn from the node):

    import - export + unmet - spill - sum(flexible injections) == fixed_net[c, t]

where fixed_net is the inflexible household load minus PV that cannot be curtailed. The dual of this
balance, divided by dt_h, is the marginal value of energy at c in step t (EUR/kWh). The objective
is the sum of every block's cost terms (EUR). Adding an asset type = one new block builder and one
line below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from models.blocks.assembly import Assembly
from models.blocks.battery import add_batteries
from models.blocks.ev import add_ev, required_kwh
from models.blocks.feed_in import add_feed_in
from models.blocks.grid import add_balance, add_connections, add_feeders
from models.blocks.heat_pump import add_heat_pumps
from models.blocks.par14a import add_dimming
from models.blocks.pv import add_pv
from models.tables import Tables


@dataclass
class DispatchModel:
    """The Pyomo model together with the tables it was built from and its slacks."""

    model: pyo.ConcreteModel
    tables: Tables
    assembly: Assembly
    ev_required_kwh: np.ndarray


def build_model(tables: Tables) -> DispatchModel:
    """Build the LP for `tables` (no solve)."""
    m = pyo.ConcreteModel(name=f"dispatch_{tables.site_id}")
    ev_required_kwh = required_kwh(tables.ev, tables.dt_h, tables.index[0].timestamp())
    asm = Assembly(tables)
    T, dt_h, pen = tables.T, tables.dt_h, tables.penalties
    grid = add_connections(m, tables.connections, tables.prices, dt_h, pen, asm)
    add_pv(m, tables.pv, asm)
    add_batteries(m, tables.batteries, T, dt_h, pen, asm)
    add_ev(m, tables.ev, dt_h, pen, asm)
    add_heat_pumps(m, tables.heat_pumps, T, dt_h, pen, asm)
    add_dimming(m, tables, pen, asm)
    add_feed_in(m, tables, asm)
    add_balance(m, grid, asm)
    add_feeders(m, tables.connections, dt_h, pen, asm)
    asm.finalize(m)
    return DispatchModel(model=m, tables=tables, assembly=asm, ev_required_kwh=ev_required_kwh)


def refresh_model(dm: DispatchModel, tables: Tables) -> None:
    """Point a built model at new tables of the same structure (``models.warm.structure_key``):
    every mutable parameter is set from `tables`; the persistent solver pushes the changes."""
    dm.assembly.refresh(tables)
    dm.tables = tables
    dm.ev_required_kwh = required_kwh(tables.ev, tables.dt_h, tables.index[0].timestamp())
