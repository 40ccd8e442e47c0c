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


def fixed_injections(tables: Tables) -> tuple[np.ndarray, np.ndarray]:
    """Inflexible net draw per connection (C, T) and per feeder (F, T), in kW: household load
    minus the generation of PV arrays that cannot be curtailed."""
    conn, pv = tables.connections, tables.pv
    node_kw = conn.fixed_load_kw.copy()
    feeder_kw = conn.feeder_fixed_load_kw.copy()
    fixed = ~pv.curtailable
    np.subtract.at(node_kw, pv.at.node[fixed], pv.available_kw[fixed])
    on_feeder = fixed & (pv.at.feeder >= 0)
    np.subtract.at(feeder_kw, pv.at.feeder[on_feeder], pv.available_kw[on_feeder])
    return node_kw, feeder_kw


def build_model(tables: Tables) -> DispatchModel:
    """Build the LP for `tables` (no solve)."""
    m = pyo.ConcreteModel(name=f"dispatch_{tables.site_id}")
    ev_required_kwh = required_kwh(tables.ev, tables.dt_h, tables.index[0].timestamp())
    asm = Assembly()
    T, dt_h, pen = tables.T, tables.dt_h, tables.penalties
    node_kw, feeder_kw = fixed_injections(tables)
    grid = add_connections(m, tables.connections, tables.prices, node_kw, dt_h, pen, asm)
    add_pv(m, tables.pv, asm)
    add_batteries(m, tables.batteries, T, dt_h, pen, asm)
    add_ev(m, tables.ev, ev_required_kwh, dt_h, pen, asm)
    add_heat_pumps(m, tables.heat_pumps, T, dt_h, pen, asm)
    add_dimming(m, tables, pen, asm)
    add_balance(m, grid, asm)
    add_feeders(m, tables.connections, feeder_kw, dt_h, pen, asm)
    asm.finalize(m)
    return DispatchModel(model=m, tables=tables, assembly=asm, ev_required_kwh=ev_required_kwh)
