"""Private building blocks of :class:`perfkit.cache.Cache` (serialisation, compression,
the memory store and the Redis store). Not a public API."""
