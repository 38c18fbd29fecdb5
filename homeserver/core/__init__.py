"""The pure protocol core: room versions, identifiers, events, canonical JSON, hashes,
signing, redaction, auth rules, power levels, state resolution and push rules.

Synchronous functions and frozen data only: no I/O, no asyncio, no aiohttp/asyncpg/dns, and
nothing else of ours (stdlib, canonicaljson, orjson, signedjson, nacl and unpaddedbase64 only). Every
rule cites its spec section. Tested with the spec's own vectors under tests/core/.
"""
