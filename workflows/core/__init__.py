"""The domain core: the event language, commands, state, ``decide``/``evolve``, the policy model,
calendar maths, permissions, idempotency, errors and shadow-run simulation.

Pure by contract (checked by ``tests/test_architecture.py``): nothing here imports Temporal,
asyncpg, FastAPI, the file system or the network, nor any other package of this project.
Everything else imports it; the workflow runs it through the sandbox's pass-through.
"""
