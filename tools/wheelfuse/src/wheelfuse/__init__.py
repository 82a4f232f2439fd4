"""wheelfuse: merge per-CPython wheels into one wheel, and check such wheels."""

__version__ = "0.1.0"
