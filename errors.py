"""The root of every error mynacard raises on purpose.

Each layer keeps its own named subclasses (``CardImageError``, ``CVCError``,
``CardCommandError`` …) so callers can catch what they expect; ``mynacard.cli.main`` is
the one place that catches them all and prints one line. Two kinds of exception stay
outside on purpose: ``cardsim.status.StatusError`` (card-internal control flow that always
ends as a status word) and the test-only power-loss ``BaseException``.
"""

from __future__ import annotations


class MynacardError(Exception):
    """Something mynacard was asked to do cannot be done; the message says what and why."""
