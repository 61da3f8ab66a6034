"""Random timm LeViTs for parity tests, built fast (:func:`levit_tools.testing.random_timm`,
shared with tools/model_converters/parity_report.py)."""
from levit_tools.testing import random_timm  # noqa: F401
