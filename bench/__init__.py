"""``make bench``: the service's throughput and latency next to what its parts allow.

Every scenario runs the real processes on loopback ports and measures the project and a
baseline alternately (A B A B ...), so that a noisy, shared machine slows both alike; the
figure reported is the median of the per-round ratios. Run: ``python -m bench --help``.
"""
