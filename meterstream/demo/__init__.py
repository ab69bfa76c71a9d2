"""`meterstream demo`: the whole pipeline on one machine, without Docker.

The demo finds or starts the local services, creates its own topics, runs the connector on the
simulator, the worker and both sinks as supervised child processes, shows what they produce in
the terminal, and on Ctrl-C stops them and says where the data is.

Modules: :mod:`~meterstream.demo.plan` (names, paths, settings of one run),
:mod:`~meterstream.demo.services` (which endpoints), :mod:`~meterstream.demo.workspace`
(the data directory and the previous run), :mod:`~meterstream.demo.supervisor` (child
processes), :mod:`~meterstream.demo.observe` (what the pipeline produced, and when it is done),
:mod:`~meterstream.demo.view` (the terminal view), :mod:`~meterstream.demo.summary` (where the
data is), :mod:`~meterstream.demo.runner` (all of it in order) and :mod:`~meterstream.demo.cli`.
"""
