"""murmur2 as Java computes it: the one partitioning every meterstream producer uses."""

from __future__ import annotations

from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from meterstream.kafka.partitioner import murmur2, partition_for_key, partition_for_meter

# Values from Apache Kafka's UtilsTest.testMurmur2 (Java's signed ints).
JAVA_CASES = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_matches_java_reference_values() -> None:
    for data, expected in JAVA_CASES.items():
        assert murmur2(data) == expected, data


@given(st.binary(max_size=64))
def test_matches_aiokafka_for_any_key(data: bytes) -> None:
    assert murmur2(data) & 0xFFFFFFFF == aiokafka_murmur2(data)


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=256))
def test_partition_is_in_range_and_stable(meter_id: str, partitions: int) -> None:
    first = partition_for_meter(meter_id, partitions)
    assert 0 <= first < partitions
    assert first == partition_for_key(meter_id.encode(), partitions)
