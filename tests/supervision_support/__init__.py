"""Deterministic stand-ins for the supervisor in tests: a manual clock, a replaying spawner."""
