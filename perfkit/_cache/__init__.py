"""Private building blocks of :class:`perfkit.cache.Cache`, not a public API: ``serialize``
and ``_frames`` (safe value encoding), ``compress`` (zstd and the entry header), ``memory``
(the in-process LRU), ``redis_backend`` (Redis I/O), ``remote`` (tier, counters and faults
on Redis), ``keys`` and ``decorator`` (``Cache.cached``), ``validate`` (argument checks)."""
