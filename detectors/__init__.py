"""Pure storm-detection logic: no Kafka, no asyncio, deterministic for the same ordered input."""

from detectors.compiled import check_fresh

check_fresh()
