"""The daemon: live sources -> per-frame pipelines -> MQTT, Prometheus, web page, under systemd.

Beside the offline front ends (:mod:`edge.api`, :mod:`edge.cli`), above the
per-frame core (:mod:`edge.pipeline`): :mod:`edge.daemon.service` runs it,
:mod:`~edge.daemon.commands` answers MQTT commands, :mod:`~edge.daemon.state`
builds the retained state and discovery messages, :mod:`~edge.daemon.sink`
numbers and stores events, :mod:`~edge.daemon.supervise` keeps worker threads
alive and :mod:`~edge.daemon.limiter` applies each source's ``fps`` limit.
Imported lazily by ``edge-fer --config``; nothing here imports :mod:`edge.cli`.
"""
