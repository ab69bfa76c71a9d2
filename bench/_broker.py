"""A broker for benchmarks: the one METERSTREAM_KAFKA_BOOTSTRAP_SERVERS names, or a local one."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def broker(heap: str = "1g") -> Iterator[str]:
    configured = os.environ.get("METERSTREAM_KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    from meterstream.devservices.kafka import start_kafka
    from meterstream.devservices.process import stop_process_group

    # SIGTERM (a killed benchmark) unwinds like Ctrl-C, so the broker below is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    data_dir = Path(tempfile.mkdtemp(prefix="meterstream-bench-kafka-"))
    service = start_kafka(data_dir, heap=heap)
    try:
        yield service.env["METERSTREAM_KAFKA_BOOTSTRAP_SERVERS"]
    finally:
        stop_process_group(service.pid)
        shutil.rmtree(data_dir, ignore_errors=True)
