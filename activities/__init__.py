"""Activities: the workflow's only side effects (appending events, reading the policy)."""
