"""A table value is encoded once: the bytes it was measured by are the bytes its changelog gets
(``streams.encoded_values``), and they read back as Faust's own ``json`` codec reads them."""

from __future__ import annotations

import json
from typing import Any

from faust.serializers import codecs

from detectors.config import DetectorConfig
from detectors.events import MentionEvent
from streams import encoded_values
from streams.agents import detect_state
from streams.agents.detect_state import Disposition
from streams.encoded_values import Encoded
from tests.storm_scenario import BRAND, phases

VALUE: dict[str, Any] = {
    "partition": 3,
    "state": {"terms": {"nb": {"forsinket": 2.5, "kø": 1}}, "x": [1.0, 1e-7, None, True]},
    "max": 1_772_409_600_000,
    "topic": "mentions.scored",
}


def test_an_encoded_value_is_written_as_fausts_json_codec_writes_it() -> None:
    codec = codecs.get_codec(encoded_values.register())
    faust_json = codecs.get_codec("json").dumps(VALUE)
    encoded = encoded_values.encode(VALUE)
    assert encoded == VALUE and encoded_values.size(encoded) == len(faust_json)
    assert codec.dumps(encoded) == faust_json
    assert codec.dumps(dict(VALUE)) == faust_json  # any other value as well
    assert codec.loads(faust_json) == VALUE  # a changelog written by the json codec reads the same


def test_the_codec_writes_the_carried_bytes_once_and_then_encodes_again() -> None:
    codec = codecs.get_codec(encoded_values.register())
    carried = Encoded(VALUE, b'{"carried": true}')
    assert codec.dumps(carried) == b'{"carried": true}'  # not encoded a second time
    assert carried.take() is None  # let go: the table does not hold the value twice
    assert codec.dumps(carried) == codecs.get_codec("json").dumps(VALUE)
    assert encoded_values.size(carried) == len(codecs.get_codec("json").dumps(VALUE))


def test_register_keeps_one_codec() -> None:
    name = encoded_values.register()
    first = codecs.get_codec(name)
    assert encoded_values.register() == name and codecs.get_codec(name) is first


def test_save_encodes_each_state_once_and_hands_the_table_that_encoding(
    monkeypatch: Any,
) -> None:
    calls: list[Any] = []
    real = encoded_values.dumps

    def counting(value: Any) -> bytes:
        calls.append(value)
        return real(value)

    monkeypatch.setattr(encoded_values, "dumps", counting)
    state = detect_state.fresh(DetectorConfig(), 60_000)
    for offset, record in enumerate(phases()["calm"][:500]):
        mention = MentionEvent.from_record(record)
        detect_state.take(state, Disposition.FEED, offset, record, mention, {}, 0)
    states: dict[str, Any] = {}
    detect_state.save(0, state, states, {})
    value = states[BRAND]
    assert isinstance(value, Encoded) and len(calls) == 1  # measured once, not again below
    written = codecs.get_codec(encoded_values.register()).dumps(value)
    assert len(calls) == 1
    assert json.loads(written) == json.loads(json.dumps(dict(value)))
    assert value["state"] == state.replayer.detectors[BRAND].to_state()


def test_the_workers_detector_state_changelog_writes_the_measured_bytes() -> None:
    """The app's ``detector-state`` table writes a saved state's measured bytes, and its
    changelog reads back as before."""
    from streams.app import build_app
    from streams.settings import Settings

    app, _ = build_app(Settings(alertmanager_urls="http://127.0.0.1:9"))
    table = app.tables["detector-state"]
    assert table.value_serializer == encoded_values.CODEC
    topic = table.changelog_topic  # a changelog write: send_changelog, with the table's codec
    carried = Encoded(VALUE, b'{"carried":1}')
    assert topic.prepare_value(carried, table.value_serializer) == (b'{"carried":1}', None)
    written = topic.prepare_value(dict(VALUE), table.value_serializer)[0]
    assert written == codecs.get_codec("json").dumps(VALUE)
    assert topic.schema.loads_value(app, _Message(written)) == VALUE  # the recovery's read
    assert app.tables["detector-pending"].value_serializer == "json"  # the others as they were


class _Message:
    def __init__(self, value: bytes) -> None:
        self.value = value
        self.headers: dict[str, bytes] = {}
