"""Rendered reports (charts, files) at the edge."""
