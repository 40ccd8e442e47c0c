"""Many neighbourhoods: generated fleets of sites for tests and benchmarks (:mod:`grid.fleet.generate`),
and planning every site of a fleet as tasks on a Dask cluster (:mod:`grid.fleet.executor`).

Kept light: importing the package loads nothing heavy; the generator loads demandlib and pvlib,
the executor and the worker load Dask. :mod:`grid.fleet.status` is used by the planning service of
every deployment.
"""

#: default memory budget of the kept (warm) models of one Dask worker, MB
DEFAULT_BUDGET_MB = 2048.0
