"""Cron (beat) coordination: every cron process agrees through the broker on one sender."""
