"""Administration and operations: what a server admin and the machinery around a deployment
(load balancers, orchestrators, monitoring) ask of the server — health now, the
Synapse-compatible admin API as it arrives.

Beside sync/ and federation/ at the top: may use every domain package below it.
"""
