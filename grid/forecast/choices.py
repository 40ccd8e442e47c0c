"""Names the CLI and the API offer before any model is loaded (importing the models pulls in
scikit-learn and pvlib: seconds, which `grid --help` must not pay)."""

#: load forecast models of ``grid forecast backtest --model`` (see ``grid.forecast.backtest``)
MODELS = ("ridge", "hgb", "profile", "naive")
