"""homeserver/stats.py: the latency histogram's buckets follow Prometheus' "<= bound" rule."""

from homeserver.stats import Latency


def test_latency_buckets_are_cumulative_and_inclusive():
    latency = Latency((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 1.0, 3.0):
        latency.observe(seconds)
    assert latency.cumulative() == [(0.1, 2), (1.0, 4), (float("inf"), 5)]
    assert latency.sum == 0.05 + 0.1 + 0.5 + 1.0 + 3.0
