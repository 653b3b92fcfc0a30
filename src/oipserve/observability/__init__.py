"""Metrics, logs and traces: everything an operator sees of a running server.

``metrics`` defines every metric once (Triton's ``nv_*`` names and oipserve's ``oipserve_*``
families, written by ``exposition``); ``custom`` is the API models
publish their own metrics with; ``logging`` formats records and holds Triton's logging-extension
state; ``tracing`` holds the trace-extension settings and imports OpenTelemetry only when tracing
is on.
"""
