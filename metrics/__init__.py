"""Every Parley metric, declared once (see definitions.py)."""

from metrics.definitions import EngineMetrics, IngestMetrics

__all__ = ["EngineMetrics", "IngestMetrics"]
