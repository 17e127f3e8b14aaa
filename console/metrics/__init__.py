"""Prometheus metrics from ``serve`` and ``watch``: celery-exporter's names, the console's figures.

``address`` (where to listen), ``taskevents`` (the event hook's counters), ``collector`` (the
families built at scrape time), ``exposition`` (a scrape's body), ``health`` (``/healthz``),
``server`` (the HTTP listener), ``exporter`` (all of it for one runtime) and ``options`` (the
shared click options).
"""
