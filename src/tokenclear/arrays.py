"""Array type aliases used by the numeric core (float64 inside the risk core only)."""

from __future__ import annotations

import numpy as np

Float64Array = np.ndarray[tuple[int, ...], np.dtype[np.float64]]
Float64Array1D = np.ndarray[tuple[int], np.dtype[np.float64]]
Float64Array2D = np.ndarray[tuple[int, int], np.dtype[np.float64]]
Int64Array1D = np.ndarray[tuple[int], np.dtype[np.int64]]
BoolArray1D = np.ndarray[tuple[int], np.dtype[np.bool_]]
DateArray1D = np.ndarray[tuple[int], np.dtype[np.datetime64]]
