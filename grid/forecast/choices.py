"""Names the CLI and the API offer before any model is loaded (importing the models pulls in
scikit-learn and pvlib: seconds, which `grid --help` must not pay)."""

#: load forecast models of ``grid forecast backtest --model`` (see ``grid.forecast.backtest``)
#: ``recent``: weighted median of recent weeks; ``auto``: per-series choice by rolling backtest
#: (grid.forecast.meters), both with conformal bands per lead hour
MODELS = ("ridge", "hgb", "profile", "naive", "recent", "auto")
