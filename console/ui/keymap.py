"""Operator key remapping (``CONSOLE_KEYMAP``), checked against every binding before start-up.

The keymap maps binding ids to keys, as Textual's ``App.set_keymap`` takes them. Textual itself
notices a clash only inside one widget's bindings and only when a key is pressed; this module
checks the whole keymap up front, across every set of bindings that are active together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from textual.app import App
from textual.binding import Binding
from textual.keys import _normalize_key_list  # Textual's spelling of "?" as "question_mark"
from textual.screen import Screen

from console.settings import SettingsError
from console.ui.dashboard import binding_sections

#: Help sections whose bindings are active together with the main screen's and the cursor keys.
TABLE_SECTIONS = ("processes", "active tasks", "queues", "workers")


class KeymapError(SettingsError):
    """CONSOLE_KEYMAP names an unknown binding or makes two bindings share a key."""


def remapped(bindings: Sequence[Binding], keymap: Mapping[str, str]) -> list[Binding]:
    """``bindings`` with the keymap's keys in place of their own, as Textual applies them."""
    return [
        b.with_key(key=keymap[b.id], key_display=None) if b.id and b.id in keymap else b
        for b in bindings
    ]


def help_sections(keymap: Iterable[tuple[str, str]]) -> list[tuple[str, Sequence[Binding]]]:
    """The help screen's sections with the keys in force (``keymap`` as in Settings)."""
    keys = dict(keymap)
    return [(where, remapped(bindings, keys)) for where, bindings in binding_sections()]


def _scopes() -> list[tuple[str, Sequence[Binding]]]:
    """Sets of bindings that are active at the same time, each named for an error message."""
    sections = dict(binding_sections())
    built_in = [b for b in (*App.BINDINGS, *Screen.BINDINGS) if isinstance(b, Binding)]
    main = [*sections.pop("main screen"), *sections.pop("any table"), *built_in]
    scopes: list[tuple[str, Sequence[Binding]]] = [
        (f"the {name} table", [*main, *sections.pop(name)]) for name in TABLE_SECTIONS
    ]
    return scopes + [(f"the {name}", bindings) for name, bindings in sections.items()]


def binding_ids() -> list[str]:
    """Every binding id a keymap may name, sorted."""
    return sorted({b.id for _, bindings in binding_sections() for b in bindings if b.id})


def _label(binding: Binding) -> str:
    return repr(binding.id) if binding.id else repr(binding.description or binding.action)


def check_keymap(keymap: Mapping[str, str]) -> dict[str, str]:
    """The keymap in Textual's key spelling; KeymapError (one line) if it cannot be applied."""
    known = binding_ids()
    for binding_id in keymap:
        if binding_id not in known:
            raise KeymapError(
                f"SENTRY_CONF: CONSOLE_KEYMAP: unknown binding id {binding_id!r}"
                f" (known: {', '.join(known)})"
            )
    normalized = {binding_id: _normalize_key_list(keys) for binding_id, keys in keymap.items()}
    for where, bindings in _scopes():
        owner: dict[str, Binding] = {}
        for binding in remapped(bindings, normalized):
            for key in _normalize_key_list(binding.key).split(","):
                other = owner.setdefault(key, binding)
                if other is binding or (other.id is not None and other.id == binding.id):
                    continue
                # Only a remapped key is the keymap's doing; default overlaps are Textual's own.
                if other.id in normalized or binding.id in normalized:
                    raise KeymapError(
                        f"SENTRY_CONF: CONSOLE_KEYMAP: {key} would be both {_label(other)}"
                        f" and {_label(binding)} in {where}"
                    )
    return normalized
