"""The worker's small LRU cache: at most maxsize values, the least recently used go first."""

from __future__ import annotations

import pytest

from worker.lru import LRU


def test_a_full_cache_forgets_the_least_recently_used_key() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now b is the least recently used
    cache.put("c", 3)
    assert ("a" in cache, "b" in cache, "c" in cache) == (True, False, True)
    assert len(cache) == 2
    assert cache.get("b") is None


def test_putting_a_kept_key_again_replaces_its_value_and_refreshes_it() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (10, None, 3)


def test_a_cache_keeps_at_least_one_value() -> None:
    with pytest.raises(ValueError, match=r"^an LRU keeps at least one value, not 0$"):
        LRU(0)
