"""Testing toolkit for applications that use a My Number card: a pytest plugin (loaded through
the ``pytest11`` entry point), a harness usable without pytest, hypothesis strategies
(``mynacard.testing.strategies``) and a card-holder state machine
(``mynacard.testing.stateful``). See docs/testing.md.

``strategies`` and ``stateful`` need hypothesis (``pip install hypothesis``); this module and
the plugin do not.
"""

from .harness import (
    CRL_ONLY,
    DEFAULT_PERSONA,
    Harness,
    PersonaSpec,
    PersonaSpecError,
    persona_fields,
    shipped_personas,
)

__all__ = ["CRL_ONLY", "DEFAULT_PERSONA", "Harness", "PersonaSpec", "PersonaSpecError",
           "persona_fields", "shipped_personas"]
