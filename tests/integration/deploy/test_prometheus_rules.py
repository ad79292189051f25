"""Alert rules: promtool accepts them, their unit tests pass and bite, each has a runbook."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from conftest import DEPLOY, REPO, load_yaml

RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests" / "alerts.test.yml"
OPERATIONS = REPO / "docs" / "operations.md"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def alerts() -> list[dict]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_alert_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_fail_on_a_changed_threshold(promtool: str, tmp_path: Path) -> None:
    """The unit tests bite: the memory alert at 1700 MB instead of 1500 must fail them."""
    rules = RULES.read_text(encoding="utf-8")
    assert "fine_tuning_pipeline_memory_peak_mb > 1500" in rules
    (tmp_path / "alerts.yml").write_text(rules.replace("> 1500", "> 1700"), encoding="utf-8")
    (tmp_path / "tests").mkdir()
    shutil.copy(RULE_TESTS, tmp_path / "tests" / "alerts.test.yml")
    result = run(promtool, "test", "rules", str(tmp_path / "tests" / "alerts.test.yml"))
    assert result.returncode != 0
    assert "TuneloopMemoryPeakHigh" in result.stdout + result.stderr


def test_compose_prometheus_config_is_valid(promtool: str) -> None:
    result = run(
        promtool, "check", "config", "--syntax-only", str(DEPLOY / "compose" / "prometheus.yml")
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_duration_tests_and_a_runbook_section() -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text(encoding="utf-8")))
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", OPERATIONS.read_text(encoding="utf-8"), re.M)
    }
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert name in tested, f"{name} has no promtool unit test"
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("docs/operations.md#"), name
        assert url.split("#", 1)[1] in anchors, f"{name}: no section {url} in operations.md"


def test_the_source_designs_alerts_keep_their_thresholds() -> None:
    by_name = {rule["alert"]: rule for rule in alerts()}
    expected = {  # API.md: pipeline down 2m, breaker 1m, memory 1500 MB 5m, cache 0.8 10m...
        "TuneloopPipelineDown": ("== 0", "2m", "critical"),
        "TuneloopOpenAIBreakerOpen": ('state="OPEN"', "1m", "critical"),
        "TuneloopMemoryPeakHigh": ("> 1500", "5m", "warning"),
        "TuneloopCacheHitRateLow": ("< 0.8", "10m", "warning"),
        "TuneloopModelEngagementLow": ("< 0.06", "30m", "warning"),
        "TuneloopCostPerTokenUp": ("[1h]) > 0.0005", None, "warning"),
    }
    for name, (fragment, duration, severity) in expected.items():
        rule = by_name[name]
        assert fragment in rule["expr"], name
        assert rule.get("for") == duration, name
        assert rule["labels"]["severity"] == severity, name
