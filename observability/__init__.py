"""What operators watch: Prometheus metrics (``metrics``), OpenTelemetry traces (``tracing``) and the API's
access log (``access_log``). Shared by the worker, the projector and the API; none of it is domain logic."""
