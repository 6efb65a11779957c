# The escalation worker (docker-compose.yml builds it).
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
COPY policies ./policies
COPY worker.py ./
RUN pip install --no-cache-dir .
# Migrations run at start-up.
ENV ESCALATIONS_POLICY=/app/policies/default.toml
CMD ["python", "worker.py"]
