"""Internals of :mod:`perfkit.store`, one job per module: ``engine`` (URLs, connections),
``schema`` (tables), ``validate`` (incoming samples), ``buffer`` (rows kept while the
database is down, back-off), ``writer`` (series ids, inserting batches), ``fastio`` (the
raw sample I/O), ``reads`` (filters and read queries), ``records`` (alert/action rows),
``queue`` (the actions queue SQL), ``retention`` (prune), ``when`` (since/until)."""
