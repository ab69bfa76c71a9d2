"""Seeded, deterministic household smart-meter simulator with labelled anomalies.

The offline source for demos and tests: pure code (no Kafka, no clock, no I/O except
:func:`write_labels` into a file object you pass). :class:`HouseholdSimulator` yields
``Reading`` records like a Tibber Pulse would, :meth:`HouseholdSimulator.labels_until` gives
the ground truth for the anomalies it injected, and :func:`parse_speed` reads
``METERSTREAM_SIM_SPEED`` for the connector, which does the pacing.

>>> sim = HouseholdSimulator(2, start_us=1_767_222_000_000_000, seed=7, anomalies=AnomalyConfig.none())
>>> reading = sim.next_batch(1)[0]
>>> reading["meter_id"], reading["power_w"] > 0, reading["power_production_w"]
('sim-0001', True, None)
>>> sim.labels_until(sim.start_us + 86_400_000_000)
[]
"""

from connector.simulator.anomalies import ANOMALY_KINDS, AnomalyConfig, AnomalyKind
from connector.simulator.household import HouseholdSimulator
from connector.simulator.labels import AnomalyLabel, read_labels, write_labels
from connector.simulator.speed import parse_speed
from connector.simulator.traits import MeterTraits

__all__ = [
    "ANOMALY_KINDS",
    "AnomalyConfig",
    "AnomalyKind",
    "AnomalyLabel",
    "HouseholdSimulator",
    "MeterTraits",
    "parse_speed",
    "read_labels",
    "write_labels",
]
