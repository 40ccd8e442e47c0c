"""Many neighbourhoods: generated fleets of sites for tests and benchmarks (:mod:`grid.fleet.generate`).

Kept light: importing the package loads nothing heavy; the generator loads demandlib and pvlib.
"""
