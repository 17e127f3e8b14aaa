"""Broker access: URLs, the embedded Redis, exact queue depth and connection health."""
