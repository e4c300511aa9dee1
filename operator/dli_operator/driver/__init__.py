"""Drives one DliBatchJob one step at a time: plan, call DLI, store the status.

The driver is a set of rooms, one concern each:

- ``core``: the ``Driver`` (step, finalize): plans, resolves the target, dispatches, and turns
  errors into a stored status;
- ``fence``: the submission fence (intent, claim, post, adopt, settle, release), the one place
  a create call leaves from;
- ``observe``: mirrors DLI's state of the running attempt;
- ``cancel``: stops an attempt, a refused cancel, and abandoning one on deletion;
- ``writer``: conditional status writes, their 409 handling, one Event per transition;
- ``ledger``: per-process memory (locks, own writes, claims), safe to lose;
- ``context``: what the rooms share.

No room holds state of its own: the per-process memory is the ``Ledger`` and the collaborators
are the ``Runtime``. So the rooms are plain functions over one ``Context`` (a Protocol the
``Driver`` satisfies), not classes: small classes would only wrap the same shared references,
and mixins would leave one class spread over files, every method able to reach every other.
A room imports ``writer``, ``ledger`` and ``context``, never another room; only ``core``
composes them (an import-linter contract).
"""

from dli_operator.driver.context import Announce
from dli_operator.driver.core import Driver

__all__ = ["Announce", "Driver"]
