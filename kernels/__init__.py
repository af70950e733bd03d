"""Pure numba kernels over numpy arrays. Imports only numpy, numba and math."""

__all__: list[str] = []
