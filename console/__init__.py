"""sentry-console: an operations console for Celery workers and cron."""
