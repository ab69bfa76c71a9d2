"""The message contract: Avro schemas, the codec, topic names and tick records.

Where to look:

* :mod:`schemas.codec` - ``AvroCodec.for_schema("Reading")``: ``encode(record) -> bytes`` and
  ``decode(data, topic=, partition=, offset=) -> dict``, single-object or Confluent framing.
* :mod:`schemas.records` - ``ReadingRecord``, ``AnomalyScoreRecord``: typed views of the dicts.
* :mod:`schemas.timestamps` - timestamps are int microseconds, UTC; helpers to and from datetime.
* :mod:`schemas.errors` - ``DecodeError`` (dead-letter the record), ``EncodeError``, ...
* :mod:`schemas.registry` - ``ConfluentRegistry(url)`` and ``value_subject(topic)``.
* :mod:`schemas.compat` - FULL_TRANSITIVE checks for a new schema version.
* :mod:`schemas.topics` - topic names, configs and tick headers.

Nothing is imported here, so ``import schemas.topics`` stays cheap.
"""
