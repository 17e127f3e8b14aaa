"""A tiny Celery app and helpers for the cluster tests."""
