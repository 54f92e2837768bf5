"""Given events, when a command, then events or a refusal: one helper for every test of a
pure domain (issue 14, item 6).

Why: every aggregate is the same three things, `decide(command, state) -> events`
(raising `Rejected` with a code, a field and a message), `evolve(state, event) -> state`
and an initial state. Each suite used to fold and assert with its own little helpers
(`given(*events)` here, `given(*commands)` there, `rejected`, `run`, `when`), so a reader
relearned them per file and a refusal was checked a different way in each. Here the
shape of a rule's test is the shape of the rule:

    TICKET = Decider(decide=ticket.decide, evolve=ticket.evolve, initial=ticket.Ticket())
    TICKET.given(e1, e2).when(command).then(e3)                  # exactly these events
    TICKET.given(e1).when(command).then()                        # nothing decided (a retry)
    TICKET.given(e1).when(command).then_rejected("conflict", "status")
    TICKET.given(e1, e2).state                                   # the folded state
    TICKET.after(open_command).when(command).events              # the events, to inspect

Start from events (`given`) when the test is about what the history is; start from
commands (`after`) when the history's events are worked out by the domain itself (due
times, warranty periods) and writing them by hand would copy the rule under test; start
from a state (`given_state`) only when another fixture already made it. `then(...)`
answers the history after those events, so a scenario reads on:
`.when(pay).then(paid).when(pay).then()`.

A domain whose `decide` takes more than (command, state), a clock value or the terms,
fits with `functools.partial` (or a named function) that binds the rest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from weibao.shared.errors import Rejected

C = TypeVar("C")  # command
E = TypeVar("E")  # event
S = TypeVar("S")  # state


@dataclass(frozen=True)
class Decider(Generic[C, E, S]):
    """An aggregate as its pure functions and the state before its first event."""

    decide: Callable[[C, S], Sequence[E]]
    evolve: Callable[[S, E], S]
    initial: S

    def given(self, *events: E) -> Given[C, E, S]:
        """The history of these events, folded from the initial state."""
        return self.given_state(self.initial).given(*events)

    def after(self, *commands: C) -> Given[C, E, S]:
        """The history these commands make, each decided on the state the one before left
        (a refusal is raised: a test's setup is not where it is expected)."""
        return self.given_state(self.initial).after(*commands)

    def given_state(self, state: S) -> Given[C, E, S]:
        """The history that left `state` (one made elsewhere, e.g. by a shared fixture)."""
        return Given(self, state)


@dataclass(frozen=True)
class Given(Generic[C, E, S]):
    """A history so far, as the state it folds to."""

    decider: Decider[C, E, S]
    state: S

    def given(self, *events: E) -> Given[C, E, S]:
        state = self.state
        for event in events:
            state = self.decider.evolve(state, event)
        return Given(self.decider, state)

    def after(self, *commands: C) -> Given[C, E, S]:
        history = self
        for command in commands:
            history = history.given(*history.decider.decide(command, history.state))
        return history

    def when(self, command: C) -> When[C, E, S]:
        """Decide `command` on this history; a refusal is kept for `then_rejected`."""
        try:
            outcome: Sequence[E] | Rejected = self.decider.decide(command, self.state)
        except Rejected as refused:
            outcome = refused
        return When(self, command, outcome)


@dataclass(frozen=True)
class When(Generic[C, E, S]):
    """What a command decided on a history: its events, or its refusal."""

    history: Given[C, E, S]
    command: C
    outcome: Sequence[E] | Rejected

    @property
    def events(self) -> list[E]:
        """The events decided (a refusal is raised, as `decide` raised it)."""
        if isinstance(self.outcome, Rejected):
            raise self.outcome
        return list(self.outcome)

    @property
    def state(self) -> S:
        """The state after the events decided."""
        return self.history.given(*self.events).state

    def then(self, *expected: E) -> Given[C, E, S]:
        """Exactly these events, in this order (none: nothing decided); the history after them."""
        if isinstance(self.outcome, Rejected):
            raise AssertionError(f"when {self.command!r}: expected {list(expected)!r}, "
                                 f"refused: {self.outcome}") from self.outcome
        decided = list(self.outcome)
        if decided != list(expected):
            raise AssertionError(f"when {self.command!r}:\n  expected {list(expected)!r}\n  decided  {decided!r}")
        return self.history.given(*decided)

    def then_rejected(self, code: str | None = None, field: str | None = None, *,
                      message: str | None = None) -> Rejected:
        """Refused, with this code and at this field (each checked when given), its message
        containing `message`; the refusal, for any further assertion."""
        refused = self.outcome
        if not isinstance(refused, Rejected):
            raise AssertionError(f"when {self.command!r}: expected a refusal, decided {list(refused)!r}")
        if code is not None and refused.code != code:
            raise AssertionError(f"when {self.command!r}: expected code {code!r}, refused: {refused}")
        if field is not None and refused.field != field:
            raise AssertionError(f"when {self.command!r}: expected field {field!r}, refused: {refused}")
        if message is not None and message not in refused.message:
            raise AssertionError(f"when {self.command!r}: expected {message!r} in the message, refused: {refused}")
        return refused
