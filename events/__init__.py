"""The event language and the PostgreSQL event store (the business record)."""
