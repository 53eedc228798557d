"""Stress testing: the scenario library, stress losses, Cover 2 and the reverse stress test."""
