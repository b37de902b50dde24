"""Fixtures of the model tests: the reference checkpoint (see _model_refdata)."""

from ._model_refdata import tiny_refdata  # noqa: F401  (the fixture behind `needs_refdata`)
