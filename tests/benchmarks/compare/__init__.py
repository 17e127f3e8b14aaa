"""Side-by-side benchmarks of the console against Flower, ``celery events`` and supervisor."""
