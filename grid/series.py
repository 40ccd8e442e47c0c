"""Time-series inputs of a site: reading and validating CSV files, and the `SiteInputs` bundle.

Each CSV has a ``timestamp`` column (ISO 8601; with an offset, or naive wall time in the site's time
zone) and numeric value columns. Errors name the file, the line (1-based, header = line 1), the
column and the value. Nothing is filled or shifted silently: a gap or a duplicate is an error.
"""

from __future__ import annotations

import io
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grid.domain import Site
from grid.errors import InputError, InputErrors
from grid.timeindex import parse_local

# Loads, PV and heat demand below 1 mW (per kWp for PV) are planned as 0: far below any meter's
# resolution, and values near HiGHS's feasibility tolerance (1e-7) can make its presolve misjudge an
# always-feasible model as infeasible.
POWER_RESOLUTION_KW = 1e-6

MAX_REPORTED = 20
#: parsed input files kept per process (:func:`read_series_csv`)
KEPT_FILES = 32


def is_inline(value: str) -> bool:
    """True when an ``inputs`` entry of a site is the series itself (CSV text, as a site stored over
    the API carries it) rather than the name of a file: a file name has no line break."""
    return "\n" in value


def read_series_csv(
    path: str | Path,
    tz: str,
    resolution_min: int,
    required: list[str] | None = None,
    text: str | None = None,
) -> pd.DataFrame:
    """Read a wide CSV into a float DataFrame with a UTC DatetimeIndex on the resolution grid; with
    `text`, the CSV is that text and `path` only names it in messages (e.g. ``inputs.base_load``).

    Raises :class:`InputErrors` listing (up to 20) problems as ``file line N: ...``.

    A file read once is kept (the last :data:`KEPT_FILES`) with what identifies its content: its
    size, modification time (ns) and inode. Read again unchanged, the caller gets a copy of the
    frame parsed before (a service plans from the same files run after run: the demo's five
    cost ~0.75 s to parse); a file written since, replaced or touched is parsed anew.
    """
    path = Path(path)
    if text is not None:
        return _parse_series_csv(path, tz, resolution_min, required, text)
    try:
        st = os.stat(path)
    except OSError:  # read_csv says what is wrong, as before
        return _parse_series_csv(path, tz, resolution_min, required, None)
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, tz, resolution_min, tuple(required or ()))
    with _FILES_LOCK:
        kept = _FILES.get(key)
        if kept is not None:
            _FILES.move_to_end(key)
    if kept is None:
        kept = _parse_series_csv(path, tz, resolution_min, required, None)
        with _FILES_LOCK:
            _FILES[key] = kept
            while len(_FILES) > KEPT_FILES:
                _FILES.popitem(last=False)
    return kept.copy()


_FILES: OrderedDict[tuple[Any, ...], pd.DataFrame] = OrderedDict()
_FILES_LOCK = threading.Lock()


def _parse_series_csv(
    path: Path, tz: str, resolution_min: int, required: list[str] | None, text: str | None
) -> pd.DataFrame:
    name = path.name if text is None else str(path)
    try:
        raw = pd.read_csv(path if text is None else io.StringIO(text), dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(str(path), f"cannot read CSV ({exc})") from exc
    if "timestamp" not in raw.columns:
        raise InputError(f"{name} line 1", "has no 'timestamp' column", list(raw.columns))
    missing = [c for c in (required or []) if c not in raw.columns]
    if missing:
        raise InputError(f"{name} line 1", f"missing column(s) {', '.join(missing)}")
    problems: list[InputError] = []
    stamps = _parse_stamps(raw["timestamp"].tolist(), tz, name, problems)
    values = {}
    for col in raw.columns.drop("timestamp"):
        values[col] = _parse_numbers(raw[col], name, col, problems)
    if not problems:
        _check_axis(stamps, resolution_min, name, problems)
    if problems:
        raise InputErrors(problems[:MAX_REPORTED], f"{path} ({len(problems)} bad value(s))")
    frame = pd.DataFrame(values, index=pd.DatetimeIndex(stamps, name="timestamp"))
    return frame


def _parse_stamps(texts: list[str], tz: str, name: str, problems: list[InputError]) -> list[pd.Timestamp]:
    out: list[Any] = []
    for i, text in enumerate(texts):
        line = i + 2
        try:
            out.append(parse_local(text.strip(), tz, f"{name} line {line}"))
        except InputError as err:
            problems.append(err)
            out.append(pd.NaT)
    return out


def _parse_numbers(col: pd.Series, name: str, column: str, problems: list[InputError]) -> np.ndarray:
    numbers = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(numbers))
    for i in bad[:MAX_REPORTED]:
        problems.append(InputError(f"{name} line {i + 2} column {column}", "not a finite number", col.iloc[i]))
    return numbers


def _check_axis(stamps: list[pd.Timestamp], resolution_min: int, name: str, problems: list[InputError]) -> None:
    step = pd.Timedelta(minutes=resolution_min)
    for i, ts in enumerate(stamps):
        if int(ts.timestamp()) % (resolution_min * 60):
            problems.append(
                InputError(f"{name} line {i + 2}", f"not on the {resolution_min}-minute grid", ts.isoformat())
            )
        if i == 0:
            continue
        gap = ts - stamps[i - 1]
        if gap <= pd.Timedelta(0):
            what = "duplicate timestamp" if gap == pd.Timedelta(0) else "timestamp goes backwards"
            problems.append(InputError(f"{name} line {i + 2}", what, ts.isoformat()))
        elif gap != step:
            problems.append(
                InputError(
                    f"{name} line {i + 2}",
                    f"gap: {gap // step - 1} interval(s) missing after {stamps[i - 1].isoformat()}",
                    ts.isoformat(),
                )
            )


@dataclass
class SiteInputs:
    """All exogenous series of a site on one UTC index (kW, kW/kWp, degC, EUR/kWh, g/kWh).

    base_load_kw:      inflexible household load, one column per household id (kW, >= 0).
    pv_kw_per_kwp:     PV availability, one column per PV array id (kW per kWp, 0..~1.1).
    heat_demand_kw:    thermal demand, one column per heat pump id (kW thermal, >= 0).
    temp_degc:         outdoor temperature.
    price_eur_per_kwh: energy price of imports (None: the tariff's constant).
    co2_g_per_kwh:     CO2 intensity of imports (None: the tariff's constant).
    feed_in_eur_per_kwh: price paid for exports (None: the tariff's constant or "spot").
    spot_eur_per_kwh:  day-ahead price (the negative-price feed-in rules and ``feed_in: spot``;
                       None: ``price_eur_per_kwh``).
    ordered_import_kw: grid-operator limit orders: the import limit (kW, >= 0) per connection id
                       and interval; NaN (or no column) where no order applies. The plan keeps
                       the lower of this and the connection's own limit.
    ordered_export_kw: the same for exports.
    reserve_kw:        planning reserve under each connection's import limit (kW, >= 0) per
                       connection id and interval, for what the forecast of its inflexible load may
                       miss (the band between its median and upper quantile); NaN or no column: none.
                       Flexible devices stay out of it unless that costs more than
                       ``Penalties.reserve_eur_per_kwh``.
    """

    base_load_kw: pd.DataFrame
    pv_kw_per_kwp: pd.DataFrame
    heat_demand_kw: pd.DataFrame
    temp_degc: pd.Series
    price_eur_per_kwh: pd.Series | None = None
    co2_g_per_kwh: pd.Series | None = None
    feed_in_eur_per_kwh: pd.Series | None = None
    spot_eur_per_kwh: pd.Series | None = None
    sources: dict[str, str] = field(default_factory=dict)
    ordered_import_kw: pd.DataFrame | None = None
    ordered_export_kw: pd.DataFrame | None = None
    reserve_kw: pd.DataFrame | None = None

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.temp_degc.index)

    def window(self, index: pd.DatetimeIndex) -> SiteInputs:
        """The inputs restricted to `index`; raises if any series does not cover it."""
        missing = index.difference(self.index)
        if len(missing):
            raise InputError(
                "inputs",
                f"do not cover the horizon: {len(missing)} interval(s) missing, first {missing[0].isoformat()}"
                f" (inputs span {self.index[0].isoformat()} .. {self.index[-1].isoformat()})",
            )

        def cut(obj: Any) -> Any:
            return None if obj is None else obj.reindex(index)

        return SiteInputs(
            base_load_kw=cut(self.base_load_kw),
            pv_kw_per_kwp=cut(self.pv_kw_per_kwp),
            heat_demand_kw=cut(self.heat_demand_kw),
            temp_degc=cut(self.temp_degc),
            price_eur_per_kwh=cut(self.price_eur_per_kwh),
            co2_g_per_kwh=cut(self.co2_g_per_kwh),
            feed_in_eur_per_kwh=cut(self.feed_in_eur_per_kwh),
            spot_eur_per_kwh=cut(self.spot_eur_per_kwh),
            sources=dict(self.sources),
            ordered_import_kw=cut(self.ordered_import_kw),
            ordered_export_kw=cut(self.ordered_export_kw),
            reserve_kw=cut(self.reserve_kw),
        )

    def for_site(self, site: Site, index: pd.DatetimeIndex) -> SiteInputs:
        """The inputs over `index` with exactly one column per asset of `site`, in the site's order,
        all finite and loads non-negative. Inputs built in code (forecasts, scenarios) pass through
        here before the LP sees them, so a missing column or a NaN is an error naming the series,
        the asset and the interval instead of a silently wrong plan."""
        window = self.window(index)
        problems: list[InputError] = []
        frames = {
            "base_load_kw": ([h.id for h in site.households], window.base_load_kw, True),
            "pv_kw_per_kwp": ([p.id for p in site.pv_arrays], window.pv_kw_per_kwp, False),
            "heat_demand_kw": ([h.id for h in site.heat_pumps], window.heat_demand_kw, True),
        }
        picked = {}
        for name, (ids, frame, non_negative) in frames.items():
            missing = [i for i in ids if i not in frame.columns]
            if missing:
                shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
                problems.append(InputError(f"inputs.{name}", f"has no column for {len(missing)} asset(s): {shown}"))
                continue
            power = frame[ids].astype(float)
            # below the plan's resolution: such crumbs (1e-7 kW, -1e-12 from a forecast's rounding)
            # only upset the solver's presolve
            picked[name] = power.mask(power.abs() < POWER_RESOLUTION_KW, 0.0)
            _check_finite(picked[name], f"inputs.{name}", non_negative, problems)
        series = {
            "temp_degc": window.temp_degc,
            "price_eur_per_kwh": window.price_eur_per_kwh,
            "co2_g_per_kwh": window.co2_g_per_kwh,
            "feed_in_eur_per_kwh": window.feed_in_eur_per_kwh,
            "spot_eur_per_kwh": window.spot_eur_per_kwh,
        }
        for name, values in series.items():
            if values is not None:
                _check_finite(values.to_frame(name), "inputs", False, problems)
        orders = {
            name: _orders(getattr(window, name), site, f"inputs.{name}", problems)
            for name in ("ordered_import_kw", "ordered_export_kw", "reserve_kw")
        }
        if problems:
            raise InputErrors(problems, "inputs")
        return SiteInputs(
            base_load_kw=picked["base_load_kw"],
            pv_kw_per_kwp=picked["pv_kw_per_kwp"],
            heat_demand_kw=picked["heat_demand_kw"],
            temp_degc=window.temp_degc.astype(float),
            price_eur_per_kwh=window.price_eur_per_kwh,
            co2_g_per_kwh=window.co2_g_per_kwh,
            feed_in_eur_per_kwh=window.feed_in_eur_per_kwh,
            spot_eur_per_kwh=window.spot_eur_per_kwh,
            sources=dict(self.sources),
            **orders,
        )


def _orders(frame: pd.DataFrame | None, site: Site, where: str, problems: list[InputError]) -> pd.DataFrame | None:
    """Ordered limits on one column per connection of `site` (NaN: no order); an unknown
    connection or a negative or infinite limit is a problem."""
    if frame is None:
        return None
    ids = [c.id for c in site.connections]
    unknown = [str(c) for c in frame.columns if c not in ids]
    if unknown:
        problems.append(InputError(where, f"names no connection of the site: {', '.join(unknown[:5])}"))
        return None
    picked = frame.reindex(columns=ids).astype(float)
    _check_finite(picked.fillna(0.0), where, True, problems)
    return picked


def _check_finite(frame: pd.DataFrame, where: str, non_negative: bool, problems: list[InputError]) -> None:
    """Report (up to MAX_REPORTED) non-finite and, if asked, negative values with column and time."""
    values = frame.to_numpy(dtype=float)
    bad = ~np.isfinite(values) | ((values < 0) if non_negative else False)
    for r, c in list(zip(*np.nonzero(bad), strict=True))[:MAX_REPORTED]:
        what = "must be a finite number" if not np.isfinite(values[r, c]) else "must be >= 0"
        problems.append(
            InputError(f"{where}[{frame.columns[c]}] at {frame.index[r].isoformat()}", what, float(values[r, c]))
        )


def load_inputs(site: Site) -> SiteInputs:
    """Read the site's input files (paths relative to its YAML) and check them against the site:
    one column per asset that needs one, no negative loads, same time axis everywhere."""
    files = site.inputs
    tz, res = site.site.timezone, site.site.resolution_min
    problems: list[InputError] = []

    def read(attr: str, required: list[str]) -> pd.DataFrame | None:
        rel = getattr(files, attr)
        if rel is None:
            if required:
                problems.append(InputError(f"inputs.{attr}", f"is required for {len(required)} asset(s)"))
            return None
        try:
            if is_inline(rel):
                return read_series_csv(f"inputs.{attr}", tz, res, required, text=rel)
            return read_series_csv(site.base_dir / rel, tz, res, required)
        except InputErrors as errs:
            problems.extend(errs.errors)
        except InputError as err:
            problems.append(err)
        return None

    frames = {key: read(key, columns) for key, columns in required_columns(site).items()}
    if problems:
        raise InputErrors(problems, f"inputs of site {site.id}")
    return site_inputs(
        site, frames, {k: input_source(getattr(files, k), k) for k, v in frames.items() if v is not None}
    )


def input_source(value: str, name: str) -> str:
    """Where an input series comes from, for messages and the plan's ``inputs``: its file name, or
    ``inputs.<name> (inline)`` for a series given as CSV text."""
    return f"inputs.{name} (inline)" if is_inline(value) else value


def required_columns(site: Site) -> dict[str, list[str]]:
    """The columns each input series of `site` must have (input name -> column names)."""
    return {
        "base_load": [h.id for h in site.households],
        "pv_availability": [p.id for p in site.pv_arrays],
        "heat_demand": [h.id for h in site.heat_pumps],
        "weather": ["temp_degc"],
        "prices": ["price_eur_per_kwh"] if site.tariff.import_price_eur_per_kwh is None else [],
    }


def site_inputs(site: Site, frames: Mapping[str, pd.DataFrame | None], sources: dict[str, str]) -> SiteInputs:
    """The :class:`SiteInputs` of `site` from its input series as read (input name -> frame on a UTC
    index, None where the site has none): the time axis all of them share, no negative loads.
    `sources` says where each came from (the plan's ``inputs``)."""
    problems: list[InputError] = []
    present = {k: v for k, v in frames.items() if v is not None}
    if not present:
        raise InputError("inputs", "no input files given")
    index = _common_index(present)
    for key, frame in present.items():
        if key in ("base_load", "heat_demand"):
            _check_non_negative(frame, sources.get(key, key), problems)
    if problems:
        raise InputErrors(problems, f"inputs of site {site.id}")
    base, pv, heat = frames.get("base_load"), frames.get("pv_availability"), frames.get("heat_demand")
    weather, prices = frames.get("weather"), frames.get("prices")

    def cols(frame: pd.DataFrame | None, ids: list[str]) -> pd.DataFrame:
        if frame is None:
            return pd.DataFrame(index=index)
        return frame.reindex(index)[ids]

    def price_column(name: str) -> pd.Series | None:
        return prices.reindex(index)[name] if prices is not None and name in prices else None

    temp = weather.reindex(index)["temp_degc"] if weather is not None else pd.Series(10.0, index=index)
    return SiteInputs(
        base_load_kw=cols(base, [h.id for h in site.households]),
        pv_kw_per_kwp=cols(pv, [p.id for p in site.pv_arrays]),
        heat_demand_kw=cols(heat, [h.id for h in site.heat_pumps]),
        temp_degc=temp,
        price_eur_per_kwh=price_column("price_eur_per_kwh"),
        co2_g_per_kwh=price_column("co2_g_per_kwh"),
        feed_in_eur_per_kwh=price_column("feed_in_eur_per_kwh"),
        spot_eur_per_kwh=price_column("spot_eur_per_kwh"),
        sources={k: sources.get(k, k) for k in present},
    )


def _common_index(frames: dict[str, pd.DataFrame]) -> pd.DatetimeIndex:
    """The intersection of the files' time axes; it must be non-empty."""
    index: pd.DatetimeIndex | None = None
    for frame in frames.values():
        idx = pd.DatetimeIndex(frame.index)
        index = idx if index is None else index.intersection(idx)
    assert index is not None
    if len(index) == 0:
        spans = ", ".join(f"{k}: {v.index[0].isoformat()}..{v.index[-1].isoformat()}" for k, v in frames.items())
        raise InputError("inputs", f"the files share no interval ({spans})")
    return index


def _check_non_negative(frame: pd.DataFrame, name: str, problems: list[InputError]) -> None:
    values = frame.to_numpy()
    rows, columns = np.nonzero(values < 0)
    for r, c in list(zip(rows, columns, strict=True))[:MAX_REPORTED]:
        problems.append(
            InputError(
                f"{name} line {r + 2} column {frame.columns[int(c)]}",
                "must be >= 0 (a load, in kW)",
                float(values[r, c]),
            )
        )


def constant_or_series(
    series: pd.Series | None, constant: float | None, index: pd.DatetimeIndex, name: str
) -> np.ndarray:
    """Values of `series` on `index`, or `constant` everywhere; raises if neither is given."""
    if series is not None:
        return series.reindex(index).to_numpy(dtype=float)
    if constant is None or (isinstance(constant, float) and math.isnan(constant)):
        raise InputError(name, "needs either a constant in the tariff or a series in the inputs")
    return np.full(len(index), float(constant))
