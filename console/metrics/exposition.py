"""A scrape's body: prometheus_client's encoder for the console's figures, and a direct
rendering of the task series, which are most of the lines.

prometheus_client validates and escapes every label of every sample; with 1,000 task names a
scrape has some 24,000 task lines, which that costs about 140 ms. The task series' label sets
are formatted once per series here, in the same text (0.0.4) and OpenMetrics forms, and
``tests/unit/test_metrics.py`` parses both renderings and holds them equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from console.metrics.taskevents import BUCKETS, FAILED, HELP, KINDS, Row, shown

OPENMETRICS = "application/openmetrics-text"
EOF_LINE = b"# EOF\n"
CHUNK_LINES = 2048
RUNTIME_HELP = "Histogram of task runtime measurements."
_LE = tuple("+Inf" if math.isinf(b) else repr(b) for b in BUCKETS)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(key: tuple[str, str, str]) -> str:
    name, hostname, queue = key
    return f'name="{_escape(name)}",hostname="{_escape(hostname)}",queue_name="{_escape(queue)}"'


def _number(value: float) -> str:
    return repr(float(value))


def render_tasks(rows: list[Row], openmetrics: bool) -> list[bytes]:
    """The ``celery_task_*_total`` counters and ``celery_task_runtime``, as families() has them,
    in encoded chunks of a few thousand lines (a big scrape is never held as lines, text and
    bytes at once)."""
    chunks: list[bytes] = []
    out: list[str] = []
    add = out.append

    def flush() -> None:
        chunks.append("".join(out).encode())
        out.clear()

    labelled = [(_labels(row[0]), row) for row in rows]
    for index, kind in enumerate(KINDS):
        family = f"celery_task_{kind}"
        sample = f"{family}_total"
        head = family if openmetrics else sample
        add(f"# HELP {head} {HELP[kind]}\n# TYPE {head} counter\n")
        for labels, (_, counts, failures, _, _) in labelled:
            if not shown(index, counts):
                continue
            if index == FAILED:
                add(f'{sample}{{{labels},exception=""}} 0.0\n')
                for cls, n in sorted((failures or {}).items()):
                    add(f'{sample}{{{labels},exception="{_escape(cls)}"}} {_number(n)}\n')
            else:
                add(f"{sample}{{{labels}}} {_number(counts[index])}\n")
            if len(out) >= CHUNK_LINES:
                flush()
        flush()
    add(f"# HELP celery_task_runtime {RUNTIME_HELP}\n# TYPE celery_task_runtime histogram\n")
    for labels, (_, _, _, buckets, total) in labelled:
        if not buckets:
            continue
        running = 0
        for le, n in zip(_LE, buckets, strict=True):
            running += n
            add(f'celery_task_runtime_bucket{{{labels},le="{le}"}} {_number(running)}\n')
        add(f"celery_task_runtime_count{{{labels}}} {_number(running)}\n")
        add(f"celery_task_runtime_sum{{{labels}}} {_number(total)}\n")
        if len(out) >= CHUNK_LINES:
            flush()
    flush()
    return chunks


def scraper(
    registry: CollectorRegistry, task_rows: Callable[[], list[Row]]
) -> Callable[[str], tuple[list[bytes], str]]:
    """A function from an ``Accept`` header to (body chunks, content type) for ``/metrics``."""

    def scrape(accept: str) -> tuple[list[bytes], str]:
        encoder, content_type = choose_encoder(accept)
        openmetrics = content_type.startswith(OPENMETRICS)
        rest = encoder(registry)  # first: the collector prunes quiet task series as it runs
        tasks = render_tasks(task_rows(), openmetrics)
        if openmetrics and rest.endswith(EOF_LINE):
            return [rest[: -len(EOF_LINE)], *tasks, EOF_LINE], content_type
        return [*tasks, rest], content_type

    return scrape
