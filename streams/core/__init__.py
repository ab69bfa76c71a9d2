"""The worker's pure core: windows, features, detector, thresholds, snapshots.

Nothing here imports Faust, Kafka or a database, does I/O or reads a clock: the same inputs
give the same outputs, so a replay gives the same scores and everything is unit-testable.
"""
