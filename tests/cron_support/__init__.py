"""Helpers for the cron coordination tests: a one-second-schedule app, a TCP cut-off forwarder."""
