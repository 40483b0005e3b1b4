"""Table values encoded once: the JSON a value was measured by is the JSON Faust writes.

A brand's detector state is measured before it is saved (a state over a Kafka record's limit
is left unsaved, ``detect_state.save``), and measuring means encoding it: about 5 ms for a
week-old brand (240 KB). Faust's ``json`` codec then encoded the same value again to write the
table's changelog. A table whose ``value_serializer`` is :data:`CODEC` writes the bytes an
:class:`Encoded` value carries instead, once, and encodes any other value as Faust's ``json``
codec does (compact ``json.dumps``, non-ASCII escaped); it reads values back as that codec
does, so a changelog written by either codec reads the same.

An :class:`Encoded` value is a ``dict``: the in-memory table, and everything that reads it,
sees the value itself. It lets go of its bytes once they are written, so the table does not
hold each value twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from faust.serializers import codecs

#: The Faust codec name for tables whose values may be :class:`Encoded`.
CODEC = "stormvarsel-encoded-json"


class Encoded(dict[str, Any]):
    """A table value with its JSON encoding (:func:`encode`)."""

    __slots__ = ("_raw",)

    def __init__(self, value: Mapping[str, Any], raw: bytes | None) -> None:
        super().__init__(value)
        self._raw = raw

    def take(self) -> bytes | None:
        """The encoding, once: the value lets go of it (None: taken, or never made)."""
        raw, self._raw = self._raw, None
        return raw


def encode(value: Mapping[str, Any]) -> Encoded:
    """``value`` with its encoding, as Faust's ``json`` codec would write it (its length is
    the record's value size)."""
    return Encoded(value, dumps(value))


def dumps(value: Any) -> bytes:
    """``value`` as Faust's ``json`` codec writes it (compact, non-ASCII escaped)."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def size(value: Encoded) -> int:
    """Bytes ``value`` will be written as (its encoding is not taken)."""
    raw = value._raw
    return len(raw) if raw is not None else len(dumps(value))


class EncodedJson(codecs.Codec):
    """Faust's ``json`` codec that writes an :class:`Encoded` value's own bytes."""

    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, Encoded):
            raw = obj.take()
            if raw is not None:
                return raw
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return json.loads(s)


def register() -> str:
    """Register the codec with Faust (idempotent); its name, for a table's ``value_serializer``."""
    if not isinstance(codecs.codecs.get(CODEC), EncodedJson):
        codecs.register(CODEC, EncodedJson())
    return CODEC


def use_for(table: Any) -> None:
    """Let a Faust ``table`` write :class:`Encoded` values' own bytes. Faust's ``Table`` takes
    no serializer: it names one after its ``value_type`` (``json`` here), and hands the
    table's ``value_serializer`` to each changelog write (``send_changelog``). Its changelog
    topic keeps reading with ``json``, which reads the same records."""
    table.value_serializer = register()
