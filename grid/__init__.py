"""Quartiere: load management for neighbourhoods (domain, data, forecasting, scheduling)."""

__version__ = "0.1.0"
