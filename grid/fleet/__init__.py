"""Many neighbourhoods: planning every site of a fleet as tasks on a Dask cluster.

Light on import (no Dask): :mod:`grid.fleet.status` is used by the planning service of every
deployment; :mod:`grid.fleet.executor` and :mod:`grid.fleet.worker` load Dask when a fleet runs.
"""
