"""deploy/ and docker-compose.yml, checked with the tools their formats come with: promtool checks and unit-
tests the alert rules and the Prometheus configuration; docker-compose (``config``: no Docker engine needed)
parses the production compose file; every metric a rule or a dashboard panel queries is one the project
exports; the compose file holds what the README's "Operating it" section says.

``make test`` installs both tools from Debian (scripts/ensure-deploy-tools); a missing tool fails here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from observability import metrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "escalations.json"
COMPOSE = ROOT / "docker-compose.yml"

# Long-running services (each with a health check) and the one-shot jobs that must finish first.
SERVICES = {"postgresql", "temporal", "temporal-ui", "worker", "projector", "api", "prometheus", "grafana"}
ONE_SHOT = {"temporal-schema", "temporal-namespace"}

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev", "stdvar",
}  # fmt: skip


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: run scripts/ensure-deploy-tools (make test does)"
    return found


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def exported_names() -> set[str]:
    """Every sample name this project's metrics expose, and the Temporal SDK's the worker exports."""
    names = {"up"}
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - the registry's own index
        if isinstance(collector, Counter):
            names.add(collector._name + "_total")  # noqa: SLF001
        elif isinstance(collector, Histogram):
            names |= {collector._name + suffix for suffix in ("_bucket", "_count", "_sum")}  # noqa: SLF001
        elif isinstance(collector, Gauge):
            names.add(collector._name)  # noqa: SLF001
    return names | set(metrics.TEMPORAL_SDK_SAMPLES) | set(metrics.TEMPORAL_SDK_SAMPLES_WHEN_SEEN)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label matchers, groupings, ranges and strings removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        name, rest = match.group(), expr[match.end() :].lstrip()
        if rest.startswith("(") or name in PROMQL_WORDS or re.fullmatch(r"\d.*|e\d*", name):
            continue
        found.add(name)
    return found


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found += [panel, *panel.get("panels", [])]
    return found


def test_the_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    promtool = tool("promtool")
    checked = run(promtool, "check", "rules", "alerts.yml", cwd=PROMETHEUS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", "alerts.test.yml", cwd=PROMETHEUS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    config = run(promtool, "check", "config", "prometheus.yml", cwd=PROMETHEUS)
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_alerts_cover_what_operators_must_hear_and_query_only_exported_metrics() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    by_name = {rule["alert"]: rule["expr"] for rule in rules}
    assert {
        "DeadlineLatenessHigh",
        "ProjectionLagHigh",
        "NotificationDeadLetters",
        "NoWorkerPolling",
        "ApiNotReady",
    } <= set(by_name)
    assert "> 5" in by_name["DeadlineLatenessHigh"] and "histogram_quantile(0.99" in by_name["DeadlineLatenessHigh"]
    assert "> 30" in by_name["ProjectionLagHigh"]
    exported = exported_names()
    for name, expr in by_name.items():
        unknown = metric_names(expr) - exported
        assert not unknown, f"alert {name} queries {unknown}, which nothing exports"
    # Every alert has a unit test that makes it fire.
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert fired == set(by_name)


def test_every_dashboard_panel_queries_a_metric_the_project_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_names()
    queried: set[str] = set()
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
            names = metric_names(target["expr"])
            assert names, f"panel {panel['title']!r}: no metric in {target['expr']!r}"
            unknown = names - exported
            assert not unknown, f"panel {panel['title']!r} queries {unknown}, which nothing exports"
            queried |= names
    # And every family the project defines has a panel.
    ours = {n for n in exported if n.startswith("escalations_")}
    families = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in ours}
    shown = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in queried}
    assert families <= shown, f"no panel for {families - shown}"


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD")}
    return run(tool("docker-compose"), "--env-file", str(env_file), "-f", str(COMPOSE), "config", env=env)


def test_the_production_compose_file_parses_and_holds_what_the_readme_says(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("POSTGRES_PASSWORD=pg-secret-for-test\nGRAFANA_ADMIN_PASSWORD=gf-secret-for-test\n")
    parsed = compose_config(env_file)
    assert parsed.returncode == 0, parsed.stderr
    config = yaml.safe_load(parsed.stdout)
    services = config["services"]
    assert SERVICES | ONE_SHOT == set(services)
    for name in SERVICES:
        assert "healthcheck" in services[name], f"{name} has no health check"
    for name in ONE_SHOT:  # run to completion before what needs them
        assert services[name]["restart"].startswith("on-failure")
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    for name in ("worker", "projector", "api"):
        assert services[name]["depends_on"]["temporal-namespace"]["condition"] == "service_completed_successfully"
    # Temporal's production image, its schema from admin-tools; never the development image.
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-schema"]["image"].startswith("temporalio/admin-tools:")
    assert not [s["image"] for s in services.values() if "auto-setup" in s.get("image", "")]
    assert int(services["worker"]["deploy"]["replicas"]) >= 2
    # A deploy's SIGTERM lets the worker drain (its graceful shutdown is 10 s) before Compose kills it.
    assert services["worker"]["stop_grace_period"] in ("30s", 30, "30")
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    # Secrets come from the env file (or a secret file), never from the repository.
    raw = COMPOSE.read_text()
    assert "pg-secret-for-test" not in raw and "pg-secret-for-test" in parsed.stdout
    assert config["secrets"]["log-key"]["file"].endswith("secrets/log-key")
    assert re.search(r"^\.env$", (ROOT / ".gitignore").read_text(), re.MULTILINE)
    assert re.search(r"^secrets/$", (ROOT / ".gitignore").read_text(), re.MULTILINE)
    # Every file a service mounts from the repository is in it.
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith(str(ROOT)):
                assert Path(source).exists(), f"{name} mounts {source}, which is not in the repository"
    # What the README's "Operating it" section names as services is what the file runs.
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Operating it", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `([a-z-]+)` \|", section, re.MULTILINE))
    assert named == SERVICES | ONE_SHOT, named ^ (SERVICES | ONE_SHOT)


def test_the_compose_file_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = compose_config(empty)
    assert refused.returncode != 0
    assert "POSTGRES_PASSWORD" in refused.stderr


def test_the_image_holds_every_package_the_project_installs() -> None:
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    copied = set(re.findall(r"^COPY (\S+) \./", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    missing = {p.split(".")[0] for p in packages} - copied
    assert not missing, f"the Dockerfile does not copy {missing}: `pip install .` fails in the image"


@pytest.mark.parametrize("script", sorted((DEPLOY / "temporal").glob("*.sh")))
def test_the_temporal_setup_scripts_are_valid_posix_shell(script: Path) -> None:
    checked = run("sh", "-n", str(script))
    assert checked.returncode == 0, checked.stderr
