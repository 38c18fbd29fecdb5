"""Calls: what clients need to place VoIP calls (TURN server credentials).

Beside accounts/ and media/: uses only the config and the clock.
"""
