"""What the procedure learnt, in order, so a continued run can fast-forward to where the
last one stopped.

A parcel may run for decades and continues as new long before Temporal's limits. The
new run replays its procedure from the top: each step and each rule point it meets is
answered from the journal (recorded answers and decisions, no activity, no timer) until
the journal is exhausted, and the procedure carries on live at the step that was open.
Only the branching facts are journaled (action sequence numbers, decision ids, draws);
the bodies stay in the earlier runs' histories.
"""

from __future__ import annotations

from landflow.state import JournalEntry


class JournalMismatch(RuntimeError):
    """The procedure asked for something else than the journal holds: the code changed
    in a way a running parcel cannot follow (it fails the workflow task, visibly, until a
    compatible worker is deployed; see the README on procedure versions)."""


class Journal:
    def __init__(self, entries: list[JournalEntry]) -> None:
        self.entries = entries
        self._cursor = 0
        self._carried = len(entries)

    @property
    def replaying(self) -> bool:
        """True while the procedure re-walks what an earlier run already did."""
        return self._cursor < self._carried

    def take(self, kind: str, name: str) -> JournalEntry:
        entry = self.entries[self._cursor]
        if (entry.kind, entry.name) != (kind, name):
            raise JournalMismatch(
                f"journal entry {self._cursor} is {entry.kind} {entry.name}, "
                f"the procedure asked for {kind} {name}"
            )
        self._cursor += 1
        return entry

    def record(self, entry: JournalEntry) -> None:
        self.entries.append(entry)
        self._cursor = len(self.entries)
        self._carried = self._cursor
