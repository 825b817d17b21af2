"""An update for a step that opened in the same workflow task is refused by the validator
(workflows/inbox.py): a worker given the whole history may hand the SDK the update after
the activity result that opened the step, a replay hands it over first, and an update
accepted in between does not replay ("Update machine does not handle this event",
seen in the fault-and-load test). `_Opening` is what the validator asks."""

from __future__ import annotations

from workflows.inbox import _Opening


def test_a_visit_opened_in_this_task_is_known_until_the_next_task():
    opening = _Opening()
    opening.note(visit=3, length=22)
    opening.note(visit=4, length=22)  # a joint review opens two tasks in one go
    assert opening.opened(3, 22) and opening.opened(4, 22)
    assert not opening.opened(5, 22), "only the visits opened now"
    assert not opening.opened(3, 31), "a later task finds the step open, as usual"


def test_a_new_task_forgets_the_visits_of_the_last():
    opening = _Opening()
    opening.note(visit=3, length=22)
    opening.note(visit=6, length=40)
    assert opening.opened(6, 40)
    assert not opening.opened(3, 22) and not opening.opened(3, 40)
