"""What the server tells its operators about itself: metrics, structured logs, traces.

- :mod:`.metrics`: the Prometheus instruments of one app (its own registry) and the gauges
  read from the database when ``/metrics`` is scraped.
- :mod:`.logs`: the JSON log format (``AWAITHUMANS_LOG_FORMAT=json``) and the request
  context (request id, task id) every line of a request carries.
- :mod:`.tracing`: optional OpenTelemetry traces, when the ``otel`` extra is installed and
  asked for.

Nothing here is on a request's path beyond a counter's increment: the database is read at
scrape time only, and the JSON formatter and request context are installed only when the
JSON format is chosen.
"""
