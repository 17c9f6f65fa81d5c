"""Host-side clients of the card's applications. They speak only APDUs through a
``readers`` connection, so they work the same on the simulator and on a real card."""
