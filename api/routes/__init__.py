"""The API's routers, one per concern: health, cases, commands, audit, metrics, signals, auth."""
