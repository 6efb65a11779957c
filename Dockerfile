# The escalation worker, projector and API (docker-compose.yml builds it once and runs each with its command).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events ./events
COPY workflows ./workflows
COPY activities ./activities
COPY projections ./projections
COPY cli ./cli
COPY api ./api
COPY bench ./bench
COPY samples ./samples
COPY scripts ./scripts
COPY observability ./observability
COPY policies ./policies
COPY worker.py ./
RUN pip install --no-cache-dir .
# Migrations run at start-up.
ENV ESCALATIONS_POLICY=/app/policies/default.toml
CMD ["python", "worker.py"]
