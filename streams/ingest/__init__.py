"""``stormvarsel ingest``: send mentions from a JSON Lines (or JSON array) or CSV file to the
mentions topic.

Every record is mapped to the mention schema, checked with the worker's own validator
(:func:`streams.mention.validate_object`) and, when a brands file is configured, its brand resolved
the way the worker does it (:func:`streams.routing.route`). Records that would be refused are not
sent; they are reported with their line numbers and can be written to a rejects file, so nothing
is lost. What is sent is the mapped mention as compact JSON, keyed by the mention id (duplicates
land on one partition, where the worker de-duplicates them) or, for a backfill in time order, by
brand (see :class:`.mapping.Preparer`), with the mention's own event time as the Kafka record
timestamp.

The logic lives in this package, without click; ``streams.cli`` only parses options and prints the
summary. Reading: :mod:`.json_input`, :mod:`.csv_input`, :mod:`.readers`; turning a record into a
mention: :mod:`.options`, :mod:`.mapping`; sending: :mod:`.pacing`, :mod:`.kafka_sink`,
:mod:`.run`; telling the user: :mod:`.progress`, :mod:`.report`, :mod:`.summary`.
"""

from streams.ingest.csv_input import check_csv, csv_rows
from streams.ingest.errors import IngestError, InputError, OptionError
from streams.ingest.json_input import json_array_rows, json_object_rows, json_rows, jsonl_rows
from streams.ingest.kafka_sink import Connection, KafkaSink, Sink, connect_kafka
from streams.ingest.mapping import Preparer, Ready, Refused, build_object, convert_time
from streams.ingest.options import (
    FORMATS_BY_SUFFIX,
    SCHEMA_FIELDS,
    Format,
    IngestOptions,
    Transform,
    build_transform,
    detect_format,
    parse_maps,
    parse_sets,
    parse_time_format,
    parse_timezone,
    typed_text,
)
from streams.ingest.pacing import Pacer, schedule
from streams.ingest.readers import count_records, open_input, read_rows
from streams.ingest.report import IngestReport, ReasonGroup, RejectLog, TimeOrder
from streams.ingest.rows import Row
from streams.ingest.run import limits_from, matcher_from, run_ingest
from streams.ingest.summary import summary_lines

__all__ = [
    "FORMATS_BY_SUFFIX",
    "SCHEMA_FIELDS",
    "Connection",
    "Format",
    "IngestError",
    "IngestOptions",
    "IngestReport",
    "InputError",
    "KafkaSink",
    "OptionError",
    "Pacer",
    "Preparer",
    "Ready",
    "ReasonGroup",
    "Refused",
    "RejectLog",
    "Row",
    "Sink",
    "TimeOrder",
    "Transform",
    "build_object",
    "build_transform",
    "check_csv",
    "connect_kafka",
    "convert_time",
    "count_records",
    "csv_rows",
    "detect_format",
    "json_array_rows",
    "json_object_rows",
    "json_rows",
    "jsonl_rows",
    "limits_from",
    "matcher_from",
    "open_input",
    "parse_maps",
    "parse_sets",
    "parse_time_format",
    "parse_timezone",
    "read_rows",
    "run_ingest",
    "schedule",
    "summary_lines",
    "typed_text",
]
