"""The Numenta Anomaly Benchmark: its scoring method, file formats, and a runner."""
