"""Pure storm-detection logic: no Kafka, no asyncio, deterministic for the same ordered input."""
