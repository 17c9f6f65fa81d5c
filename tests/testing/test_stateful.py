"""The card-holder state machine runs clean on the simulator: its model of PIN counters,
certificates and CRLs agrees with the card (over APDUs) and the PKI (validator verdicts)."""

from __future__ import annotations

from hypothesis import settings

from mynacard.testing.stateful import CardHolderMachine

RUN = settings(max_examples=15, stateful_step_count=12, derandomize=True, deadline=None,
               database=None)


def test_the_base_machine_finds_no_disagreement(mynacard_harness):
    CardHolderMachine.run(mynacard_harness, RUN)


class ChildMachine(CardHolderMachine):
    """A child's card: no signing certificate, so moving replaces nothing."""

    persona = "sato-sora-child"


def test_a_child_card_runs_through_the_machine(mynacard_harness):
    ChildMachine.run(mynacard_harness, settings(RUN, max_examples=5))
