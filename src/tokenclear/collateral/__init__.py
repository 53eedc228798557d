"""Collateral: asset registry, eligibility schedules, haircuts, limits, valuation, accrual, allocation.

Pure core (no I/O) except :mod:`tokenclear.collateral.files`, which reads the reference data.
"""
