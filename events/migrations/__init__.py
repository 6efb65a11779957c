"""Ordered SQL migrations, applied by ``events.migrate.apply_migrations``."""
