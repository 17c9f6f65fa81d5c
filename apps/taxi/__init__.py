"""マイタク (taxi-fare subsidy, municipal-apps.md §3): the host half of the 空き領域版 — the
city counter's enrolment, the offline in-taxi terminal and the city ledger (docs/taxi.md)."""
