"""Workflow configuration: Dapr's Configuration YAML and environment overrides."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ledgerflow.workflow_config import ConfigurationError, WorkflowConfig, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [("720h", 720 * 3600), ("1h30m", 5400), ("45s", 45),
                                               ("500ms", 0.5), ("2d", 172800), (10, 10), ("1.5", 1.5)])
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10x", "h", "1h garbage", "-5s"])
def test_bad_durations_are_refused(text) -> None:
    with pytest.raises(ConfigurationError, match="Invalid duration"):
        parse_duration(text)


def test_dapr_configuration_file_with_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("""
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: test}
spec:
  workflow:
    maxConcurrentWorkflowInvocations: 16
    maxConcurrentActivityInvocations: 8
    stateRetentionPolicy: {anyTerminal: 720h, completed: 1h}
    pools: {resize: media}
    limits:
      activities: {charge: 2}
      workflows: {report: 1}
""")
    config = WorkflowConfig.load(str(path), env={"LEDGERFLOW_MAX_CONCURRENT_ACTIVITY_INVOCATIONS": "4",
                                                 "LEDGERFLOW_RETENTION_FAILED": "2h",
                                                 "LEDGERFLOW_ACTIVITY_LIMITS": "charge=3,mail=1"})
    assert config.max_concurrent_workflow_invocations == 16
    assert config.max_concurrent_activity_invocations == 4
    assert config.retention == {"anyTerminal": timedelta(hours=720), "completed": timedelta(hours=1),
                                "failed": timedelta(hours=2)}
    assert config.pools == {"resize": "media"}
    assert config.activity_limits == {"charge": 3, "mail": 1}
    assert config.workflow_limits == {"report": 1}


def test_empty_configuration_is_all_defaults() -> None:
    assert WorkflowConfig.load(None, env={}) == WorkflowConfig()


@pytest.mark.parametrize(("body", "message"), [
    ("kind: Component\n", "kind must be Configuration"),
    ("spec: {workflow: {stateRetentionPolicy: {forever: 1h}}}\n", "Unknown stateRetentionPolicy keys"),
    ("spec: {workflow: {limits: {activities: {a: 0}}}}\n", "must be at least 1"),
    ("spec: {workflow: {maxConcurrentWorkflowInvocations: 0}}\n", "at least 1"),
    ("spec: [unclosed\n", "Cannot read the configuration file"),
])
def test_bad_configuration_is_refused_with_a_clear_error(tmp_path: Path, body, message) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigurationError, match=message):
        WorkflowConfig.load(str(path), env={})


def test_bad_env_pairs_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="name=value pairs"):
        WorkflowConfig.load(None, env={"LEDGERFLOW_POOLS": "justaname"})
