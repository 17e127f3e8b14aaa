"""Normalisation of raw events: defaults, trimming, fingerprints, and what gets dropped."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from workers.events import (
    MAX_MESSAGE_BYTES,
    InvalidEvent,
    normalise_event,
    trim_utf8,
)

EVENT_ID = "0123456789abcdef0123456789abcdef"


def raw(**fields: Any) -> dict[str, Any]:
    """A valid raw event with `fields` overriding its defaults."""
    event: dict[str, Any] = {
        "event_id": EVENT_ID,
        "project": "default",
        "level": "error",
        "message": "boom",
        "platform": "python",
        "timestamp": 1.7e9,
        "tags": {"env": "test"},
        "exception": {"type": "ValueError", "value": "bad value"},
    }
    event.update(fields)
    return event


def test_full_event_is_kept() -> None:
    event = normalise_event(raw(), received=1.8e9)
    assert event["event_id"] == EVENT_ID
    assert event["project"] == "default"
    assert event["level"] == "error"
    assert event["message"] == "boom"
    assert event["platform"] == "python"
    assert event["timestamp"] == 1.7e9
    assert event["received"] == 1.8e9
    assert event["tags"] == {"env": "test"}
    assert event["exception"] == {"type": "ValueError", "value": "bad value"}
    assert event["fingerprint"] == hashlib.sha1(b"ValueError\nboom").hexdigest()


def test_minimal_event_gets_defaults() -> None:
    event = normalise_event({"event_id": EVENT_ID.upper()}, received=5.0)
    assert event["event_id"] == EVENT_ID
    assert event["project"] == "default"
    assert event["level"] == "error"
    assert event["platform"] == "other"
    assert event["message"] == ""
    assert event["timestamp"] == 5.0
    assert event["tags"] == {}
    assert "exception" not in event


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("WARNING", "warning"),
        (" Info ", "info"),
        ("debug", "debug"),
        ("fatal", "fatal"),
        ("critical", "fatal"),
        ("warn", "warning"),
        ("nonsense", "error"),
        (None, "error"),
        (3, "error"),
    ],
)
def test_level_is_lower_case_from_known_set(given: Any, expected: str) -> None:
    assert normalise_event(raw(level=given))["level"] == expected


def test_message_is_trimmed_to_8_kib_of_utf8() -> None:
    event = normalise_event(raw(message="é" * 10_000))
    assert len(event["message"].encode("utf-8")) <= MAX_MESSAGE_BYTES
    assert event["message"] == "é" * (MAX_MESSAGE_BYTES // 2)
    assert trim_utf8("short") == "short"


def test_message_falls_back_to_exception() -> None:
    event = normalise_event(raw(message=None))
    assert event["message"] == "ValueError: bad value"


def test_given_fingerprint_wins() -> None:
    listed = normalise_event(raw(fingerprint=["a", "b"]))["fingerprint"]
    assert listed == hashlib.sha1(b"a\nb").hexdigest()
    single = normalise_event(raw(fingerprint="grp"))["fingerprint"]
    assert single == hashlib.sha1(b"grp").hexdigest()


def test_same_error_same_fingerprint_across_events() -> None:
    one = normalise_event(raw(event_id="1" * 32))
    two = normalise_event(raw(event_id="2" * 32, timestamp=1.0))
    other = normalise_event(raw(event_id="3" * 32, message="different"))
    assert one["fingerprint"] == two["fingerprint"] != other["fingerprint"]


def test_dashed_uuid_and_numeric_string_timestamp_are_accepted() -> None:
    event = normalise_event(raw(event_id="01234567-89ab-cdef-0123-456789abcdef", timestamp="12.5"))
    assert event["event_id"] == EVENT_ID
    assert event["timestamp"] == 12.5


def test_platform_is_lower_case_and_tags_become_strings() -> None:
    event = normalise_event(raw(platform="Python", tags={"n": 1, 2: None}))
    assert event["platform"] == "python"
    assert event["tags"] == {"n": "1", "2": "None"}


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "not an event",
        ["list"],
        {},
        {"event_id": None},
        {"event_id": "xyz"},
        {"event_id": "0" * 31},
        {"event_id": "g" * 32},
        {"event_id": 123},
        raw(timestamp="yesterday"),
        raw(timestamp=float("nan")),
        raw(timestamp=True),
        raw(timestamp=-1),
        raw(tags=["a"]),
        raw(exception="boom"),
        raw(message=42),
        raw(project=7),
        raw(fingerprint={"a": 1}),
    ],
)
def test_malformed_events_are_rejected(bad: Any) -> None:
    with pytest.raises(InvalidEvent):
        normalise_event(bad)


def test_normalised_event_is_json_safe() -> None:
    import json

    event = normalise_event(raw())
    assert json.loads(json.dumps(event)) == event
