"""PageCache: which built page a request gets, on a fake clock and a counting builder."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from perfkit.dashboard import PageCache


class Builder:
    """Stands in for build_page: returns numbered pages; ``gate`` holds builds back."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, store: Any, **kw: Any) -> Any:
        assert self.gate.wait(30), "test never released the build"
        self.calls.append(kw)
        return ("page", len(self.calls), kw["host"], kw["window"])


def _cache() -> tuple[PageCache, Builder]:
    b = Builder()
    return PageCache(None, loader=object(), builder=b), b  # type: ignore[arg-type]


def _get(cache: PageCache, now: float, **kw: Any) -> Any:
    args: dict[str, Any] = {"window": "15min", "horizon": "30min", "host": "h",
                            "refresh_s": 5.0, **kw}
    return cache.get(now=now, **args)


def test_a_new_visitor_sees_a_recent_page_at_once_and_the_fresh_one_next() -> None:
    cache, b = _cache()
    warm = _get(cache, 1000.0)                         # the warm-up's build
    b.gate.clear()                                     # the next build waits for us
    seen = _get(cache, 1020.0, recent_s=30.0)          # 20 s later, another tick
    assert seen is warm
    b.gate.set()
    assert cache.wait_background(30)
    fresh = _get(cache, 1021.0)                        # same tick: the background build
    assert fresh != warm and fresh[1] == 2 and len(b.calls) == 2


def test_recent_page_of_any_refresh_interval_but_only_the_same_view() -> None:
    cache, b = _cache()
    one_s = _get(cache, 1000.0, refresh_s=1.0)
    assert _get(cache, 1010.0, refresh_s=5.0, recent_s=30.0) is one_s
    assert cache.wait_background(30)
    other_host = _get(cache, 1011.0, host="other", recent_s=30.0)
    other_window = _get(cache, 1011.0, window="1h", recent_s=30.0)
    assert other_host[2] == ("other",) and other_window[3] == "1h"   # built, not borrowed
    assert len(b.calls) == 4


def test_a_page_older_than_recent_s_is_not_shown_it_is_built_in_the_foreground() -> None:
    cache, _ = _cache()
    old = _get(cache, 1000.0)
    new = _get(cache, 1031.0, recent_s=30.0)
    assert new is not old and new[1] == 2
    assert _get(cache, 1031.0 + 30.0, recent_s=30.0) is new  # exactly 30 s: still recent
    assert cache.wait_background(30)


def test_invalidate_makes_the_next_request_build_in_the_foreground() -> None:
    cache, b = _cache()
    _get(cache, 1000.0)
    cache.invalidate()
    page = _get(cache, 1001.0, recent_s=30.0, stale_ok=True)
    assert page[1] == 2 and cache.wait_background(30) and len(b.calls) == 2


def test_timed_refresh_takes_the_previous_tick_only() -> None:
    cache, b = _cache()
    first = _get(cache, 1000.0)
    b.gate.clear()
    assert _get(cache, 1005.0, stale_ok=True) is first      # next tick: previous shown
    b.gate.set()
    assert cache.wait_background(30)
    assert _get(cache, 1006.0, stale_ok=True)[1] == 2        # the one built behind
    gap = _get(cache, 1020.0, stale_ok=True)                 # three ticks later: built now
    assert gap[1] == 3


def test_pages_of_other_refresh_intervals_survive_a_build() -> None:
    cache, b = _cache()
    five = _get(cache, 1000.0, refresh_s=5.0)
    _get(cache, 1001.0, refresh_s=1.0)
    _get(cache, 1002.0, refresh_s=1.0)
    assert _get(cache, 1003.0, refresh_s=5.0) is five and len(b.calls) == 3


def test_bad_refresh_or_recent_s_is_refused() -> None:
    cache, _ = _cache()
    with pytest.raises(ValueError, match="refresh_s must be positive"):
        _get(cache, 1000.0, refresh_s=0)
    with pytest.raises(ValueError, match="recent_s must be a non-negative"):
        _get(cache, 1000.0, recent_s=-1.0)



class _Signalling:
    """A build lock that says when a request starts waiting on it."""

    def __init__(self, lock: Any, waiting: threading.Event) -> None:
        self.lock, self.waiting = lock, waiting

    def __enter__(self) -> None:
        self.waiting.set()
        self.lock.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()


def test_a_new_visitor_waits_for_the_same_views_build_under_way_instead_of_a_second() -> None:
    cache, b = _cache()
    building = threading.Event()
    moved = threading.Event()  # the visitor waits on the build under way, or builds its own

    def builder(store: Any, **kw: Any) -> Any:
        (moved if building.is_set() else building).set()
        return b(store, **kw)

    cache._builder = builder
    b.gate.clear()
    warm = threading.Thread(target=_get, args=(cache, 1000.0))   # the warm-up, tick 200
    warm.start()
    assert building.wait(30)
    with cache._lock:
        key = next(iter(cache._building))
        cache._building[key] = _Signalling(cache._building[key], moved)  # type: ignore
    got: list[Any] = []
    visitor = threading.Thread(target=lambda: got.append(_get(cache, 1007.0, recent_s=30.0)))
    visitor.start()                                              # tick 201, same view
    assert moved.wait(30)
    b.gate.set()
    warm.join(30)
    visitor.join(30)
    assert got and got[0][1] == 1 and len(b.calls) == 1
