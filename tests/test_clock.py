"""The shared clock: real by default, frozen and advanced on demand, aware times only."""

from __future__ import annotations

import datetime as dt

import pytest

from mynacard.clock import VirtualClock, system_clock

T0 = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)


def test_real_until_frozen_then_moves_only_when_told() -> None:
    clock = VirtualClock()
    assert not clock.frozen and abs(clock() - system_clock()) < dt.timedelta(seconds=5)
    clock.freeze(T0)
    assert clock() == T0 == clock()
    assert clock.advance(dt.timedelta(days=1)) == T0 + dt.timedelta(days=1) == clock()
    clock.unfreeze()
    assert abs(clock() - system_clock()) < dt.timedelta(seconds=5)


def test_refuses_naive_times_and_advancing_real_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        VirtualClock(dt.datetime(2026, 4, 1))
    with pytest.raises(RuntimeError, match="freeze"):
        VirtualClock().advance(dt.timedelta(seconds=1))


def test_frozen_time_is_utc_whatever_zone_it_was_given_in() -> None:
    jst = dt.timezone(dt.timedelta(hours=9))
    clock = VirtualClock(dt.datetime(2026, 4, 1, 18, 0, tzinfo=jst))
    assert clock() == T0 and clock().tzinfo == dt.UTC
