"""Storage: the PostgreSQL pool, migrations, the embedded cluster and one small store per domain.

Stores use plain `$n` SQL through asyncpg and return frozen row dataclasses. A table is written
by exactly one store (each store's docstring names its tables). `media_files.py` is the one
store on disk rather than in PostgreSQL: media content, named by its hash. May import `homeserver.core`,
`homeserver.config` and `homeserver.errors`, nothing higher.
"""
