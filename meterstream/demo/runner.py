"""One demo run from start to end: services, topics, children, the live view, a clean stop.

The order matters and is the design: the data directory is locked first (one demo per
directory), the services are found or started, the previous run's topics are removed, this run's
topics are created, then the children start in pipeline order (sinks, worker, connector) so that
every reader is there before its data. The loop watches the children and redraws the view; it
ends on Ctrl-C/SIGTERM/SIGHUP, when a child dies, or (``--exit-when-done``) once everything the
connector published was scored and written. The children are then stopped in reverse order and
the demo prints where the data is.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import click
from pydantic import BaseModel

from meterstream.demo.observe import Observer, Snapshot
from meterstream.demo.plan import DemoOptions, DemoPlan
from meterstream.demo.services import Endpoints, resolve_endpoints
from meterstream.demo.summary import where_the_data_is
from meterstream.demo.supervisor import StopResult, Supervisor
from meterstream.demo.view import TerminalView, rows_per_meter, tuning_text
from meterstream.demo.workspace import Workspace, forget_kafka_names
from meterstream.devservices.process import free_port, log_tail
from meterstream.logs import RedactSecrets, configure_logging
from meterstream.settings import ENV_PREFIX, Settings, load_settings

EXIT_OK = 0
EXIT_CHILD_FAILED = 1

_FRAME_EVERY_S = 1.0
_TICK_S = 0.1
_TAIL_LINES = 25


@dataclass
class StopRequest:
    """Set from signal handlers (a plain flag: locks are not safe inside a handler)."""

    requested: bool = False
    signal_name: str = ""


def overrides_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """``METERSTREAM_GROUP_FIELD=value`` pairs as the nested overrides ``load_settings`` takes.

    >>> overrides_from_env({"METERSTREAM_SCHEMA_REGISTRY_URL": "http://r", "METERSTREAM_SOURCE": "simulate"})
    {'schema_registry': {'url': 'http://r'}, 'source': 'simulate'}
    """
    groups = sorted(
        (
            name
            for name, info in Settings.model_fields.items()
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
        ),
        key=len,
        reverse=True,  # longest first: schema_registry_url belongs to schema_registry
    )
    nested: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        group = next((g for g in groups if name.startswith(f"{g}_")), None)
        if group is None:
            if name in Settings.model_fields:
                nested[name] = value
            continue
        nested.setdefault(group, {})[name[len(group) + 1 :]] = value
    return nested


@contextmanager
def stop_on_signals(stop: StopRequest, supervisor: Supervisor | None = None) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP ask for a clean stop; a second one stops waiting for it."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.requested and supervisor is not None:
            supervisor.force = True
        stop.requested = True
        stop.signal_name = signal.Signals(signum).name

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handle) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class DemoRun:
    """Everything one run holds; :meth:`run` returns the exit code."""

    def __init__(self, options: DemoOptions, no_services: bool) -> None:
        self.options = options
        self.no_services = no_services
        self._stdout_gone = False
        self._workspace: Workspace | None = None

    def say(self, text: str) -> None:
        """Print a line; a closed stdout (``| head``) must not keep the children from stopping."""
        if self._stdout_gone:
            return
        try:
            click.echo(text)
        except BrokenPipeError:
            self._stdout_gone = True

    def _prepare(self) -> tuple[DemoPlan, Settings, Endpoints, dict[str, str]]:
        # Kept on self: the lock lives as long as its open file, i.e. the whole run.
        self._workspace = workspace = Workspace(self.options.data_dir)
        workspace.lock()
        endpoints = resolve_endpoints(self.no_services, self.say)
        plan = DemoPlan.new(self.options, datetime.now(UTC))
        shared = {**endpoints.env, **plan.settings_env()}
        settings = load_settings(**overrides_from_env(shared))
        # The demo's own log lines would tear the live view apart: warnings and up only.
        level = "DEBUG" if settings.log.level == "DEBUG" else "WARNING"
        configure_logging(level, settings.log.format, secrets=settings.secrets())
        self.say(f"meterstream demo · run {plan.run_id} · data in {plan.data_dir}")
        self.say(f"services: {endpoints.describe()}")
        self.say(
            f"  kafka {settings.kafka.bootstrap_servers} · postgres {settings.postgres.dsn} · "
            f"s3 {settings.s3.endpoint}"
        )
        removed = forget_kafka_names(settings, workspace.previous_run())
        workspace.start_run(plan)
        from meterstream.kafka.topics import ensure_topics

        results = ensure_topics(settings)
        note = f" (removed {len(removed)} topics of the previous demo run)" if removed else ""
        self.say(f"topics: {len(results)} ready, prefix {plan.prefix}{note}")
        return plan, settings, endpoints, shared

    def run(self) -> int:
        plan, settings, endpoints, shared = self._prepare()
        connector_port, lake_port = free_port(), free_port()
        supervisor = Supervisor({**os.environ, **shared})
        stop = StopRequest()
        view = TerminalView(plan)
        observer: Observer | None = None
        snapshot: Snapshot | None = None
        code = EXIT_OK
        with stop_on_signals(stop, supervisor):
            try:
                for spec in plan.children(connector_port, lake_port):
                    child = supervisor.start(spec)
                    self.say(f"started {spec.name:<12} pid {child.pid:<7} log {spec.log_path}")
                self.say(tuning_text(plan))
                observer = Observer(settings, plan, connector_port, lake_port)
                code, snapshot = self._watch(
                    plan=plan,
                    supervisor=supervisor,
                    observer=observer,
                    view=view,
                    stop=stop,
                    settings=settings,
                )
            finally:
                view.close()
                if stop.requested:
                    self.say(f"{stop.signal_name}: stopping (press Ctrl-C again to kill at once)")
                results = supervisor.stop_all(self.say)
                code = max(code, self._report_stops(results))
        if observer is not None:
            snapshot = self._final_snapshot(observer, supervisor, snapshot)
            observer.close()
        self.say("")
        for line in where_the_data_is(plan, settings, endpoints, snapshot, supervisor.children):
            self.say(line)
        return code

    def _watch(
        self,
        *,
        plan: DemoPlan,
        supervisor: Supervisor,
        observer: Observer,
        view: TerminalView,
        stop: StopRequest,
        settings: Settings,
    ) -> tuple[int, Snapshot | None]:
        started = time.monotonic()
        next_frame = 0.0
        snapshot: Snapshot | None = None
        connector = supervisor.get("connector")
        redact = RedactSecrets(settings.secrets()).redact
        while not stop.requested:
            if connector is not None and connector.returncode == 0 and not connector.expected_exit:
                # The simulated span is over: the connector flushed and ended, as it should.
                connector.expected_exit = True
                observer.connector_finished(connector.spec.log_path)
            dead = supervisor.unexpected_exits()
            if dead:
                view.close()
                for child in dead:
                    self.say(
                        f"\n{child.spec.name} (pid {child.pid}) exited with code "
                        f"{child.returncode}; last lines of {child.spec.log_path}:"
                    )
                    self.say(redact(log_tail(child.spec.log_path, _TAIL_LINES)))
                self.say("stopping the other processes")
                return EXIT_CHILD_FAILED, snapshot
            now = time.monotonic()
            if now >= next_frame:
                next_frame = now + _FRAME_EVERY_S
                snapshot = self._snapshot(observer, supervisor, view, now - started)
                view.draw(snapshot)
                if snapshot.done and self.options.exit_when_done:
                    return EXIT_OK, snapshot
            time.sleep(_TICK_S)
        return EXIT_OK, snapshot

    def _snapshot(
        self, observer: Observer, supervisor: Supervisor, view: TerminalView, elapsed: float
    ) -> Snapshot:
        connector = supervisor.get("connector")
        if view.is_tty:
            import shutil

            rows = rows_per_meter(self.options.homes, shutil.get_terminal_size().lines)
        else:
            rows = 0  # the status line shows counters only
        return observer.snapshot(
            elapsed_s=elapsed,
            children=[(c.spec.name, c.state()) for c in supervisor.children],
            connector_running=connector is not None and connector.returncode is None,
            rows_per_meter=max(rows, 1),
            flagged=3,
        )

    def _final_snapshot(
        self, observer: Observer, supervisor: Supervisor, last: Snapshot | None
    ) -> Snapshot | None:
        # Counts after the children wrote their last batches on the way out.
        connector = supervisor.get("connector")
        if connector is not None:
            observer.read_published(connector.spec.log_path)
        try:
            return observer.snapshot(
                elapsed_s=last.elapsed_s if last else 0.0,
                children=[(c.spec.name, c.state()) for c in supervisor.children],
                connector_running=False,
                rows_per_meter=1,
                flagged=0,
            )
        except Exception as exc:
            logging.getLogger(__name__).warning("could not read the final counts: %s", exc)
            return last

    def _report_stops(self, results: list[StopResult]) -> int:
        code = EXIT_OK
        for result in results:
            if result.killed:
                self.say(f"{result.name}: did not stop in time, killed")
                code = EXIT_CHILD_FAILED
            elif result.returncode not in (0, None):
                self.say(f"{result.name}: exited with code {result.returncode}")
                code = EXIT_CHILD_FAILED
        return code


def run_demo(options: DemoOptions, *, no_services: bool) -> int:
    """Run the demo; returns the process exit code."""
    return DemoRun(options, no_services).run()
