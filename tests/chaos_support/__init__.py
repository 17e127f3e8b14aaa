"""Helpers for the chaos tests: a headless console driver and polling helpers."""
