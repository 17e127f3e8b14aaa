"""Dialogs: yes / no, type a name to confirm, how to quit with tasks running, which queue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes / no question; ``y`` confirms, ``n`` or ``escape`` cancels."""

    BINDINGS = [
        Binding("y", "answer(True)", "yes", id="confirm_yes", tooltip="Confirm"),
        Binding("n,escape", "answer(False)", "no", id="confirm_no", tooltip="Cancel"),
    ]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        """The question and two buttons."""
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        """Focus the safe choice."""
        self.query_one("#no").focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        """A button answers the question."""
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        """Close with ``answer``."""
        self.dismiss(answer)


class TypeNameScreen(ModalScreen[bool]):
    """Confirm a destructive action by typing the exact name of its target."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="type_cancel", tooltip="Cancel")]

    def __init__(self, question: str, name: str) -> None:
        super().__init__()
        self.question = question
        self.target = name

    def compose(self) -> ComposeResult:
        """The question, an input and a hint."""
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Label(f"Type {self.target} and press enter (escape cancels).", classes="hint")
            yield Input(placeholder=self.target, id="typed")

    def on_mount(self) -> None:
        """Focus the input."""
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        """Confirm only when the typed text is the name."""
        if event.value.strip() == self.target:
            self.dismiss(True)
        else:
            self.query_one(".hint", Label).update(
                f"That is not {self.target!r}. Type it exactly, or press escape."
            )
            event.input.value = ""

    def action_cancel(self) -> None:
        """Close without confirming."""
        self.dismiss(False)


def running_tasks(data: Any) -> int | None:
    """Tasks running in this console's workers, to ask about at quit; None when it cannot know.

    With task events (the default) the active tasks are counted. Without them
    (``CONSOLE_EVENTS = "workers"``) the active tasks are always empty: the workers' own
    heartbeat counts stand in, and zero there proves nothing (a task may have started since),
    so while any of this console's workers is online the answer is "cannot know".
    """
    if data is None:
        return 0
    if data.events != "workers":
        return len(data.active_tasks)
    own = [w for w in data.workers if w.online and w.hostname not in data.remote_workers]
    reported = sum(w.active for w in own)
    if reported:
        return int(reported)
    return None if own else 0


class QuitScreen(ModalScreen[str | None]):
    """Tasks are (or may be) running: wait for them, stop now, or stay."""

    BINDINGS = [
        Binding("w,q", "choose('wait')", "wait", id="quit_wait", tooltip="Let tasks finish"),
        Binding("n", "choose('now')", "now", id="quit_now", tooltip="Stop workers at once"),
        Binding("escape", "choose(None)", "stay", id="quit_stay", tooltip="Keep the console"),
    ]

    def __init__(self, running: int | None) -> None:
        super().__init__()
        self.running = running
        """Tasks known to run; None when the console cannot know (no task events)."""

    def compose(self) -> ComposeResult:
        """The question and three buttons."""
        if self.running is None:
            ask = (
                'Tasks may be running: with CONSOLE_EVENTS = "workers" the console cannot '
                "tell. Quit how?"
            )
        else:
            noun = "task is" if self.running == 1 else "tasks are"
            ask = f"{self.running} {noun} running. Quit how?"
        with Vertical(classes="dialog"):
            yield Label(ask, classes="question")
            yield Label(
                "wait: warm shutdown, running tasks finish (up to the stop timeout).\n"
                "now: workers stop at once; unfinished tasks go back to their queue.",
                classes="hint",
            )
            with Horizontal(classes="buttons"):
                yield Button("Wait (w)", id="wait", variant="primary")
                yield Button("Now (n)", id="now", variant="error")
                yield Button("Stay (esc)", id="stay")

    def on_mount(self) -> None:
        """Focus the safe choice."""
        self.query_one("#wait").focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        """A button chooses."""
        self.dismiss({"wait": "wait", "now": "now"}.get(event.button.id or ""))

    def action_choose(self, choice: str | None) -> None:
        """Close with ``choice``."""
        self.dismiss(choice)


class QueueScreen(ModalScreen[str | None]):
    """Ask for a queue name, completed from known ones; enter answers, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="queue_cancel", tooltip="Cancel")]

    def __init__(self, question: str, choices: Sequence[str], hint: str) -> None:
        super().__init__()
        self.question = question
        self.choices = list(choices)
        self.hint = hint

    def compose(self) -> ComposeResult:
        """The question, what the worker consumes now, and an input that completes names."""
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Label(self.hint, classes="hint")
            yield Input(
                placeholder=self.choices[0] if self.choices else "queue name",
                suggester=SuggestFromList(self.choices, case_sensitive=False),
                id="queue",
            )

    def on_mount(self) -> None:
        """Focus the input."""
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        """Answer with the typed name (nothing typed: say so and wait)."""
        name = event.value.strip()
        if name:
            self.dismiss(name)
        else:
            self.query_one(".hint", Label).update("Type a queue name, or press escape.")

    def action_cancel(self) -> None:
        """Close without a queue."""
        self.dismiss(None)
