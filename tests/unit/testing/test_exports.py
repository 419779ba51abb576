"""Export freeze for `ledgerflow.testing`: a public name or method that disappears fails here."""

from __future__ import annotations

import ledgerflow.testing

FROZEN_EXPORTS = ["HistoryFormatError", "RecordedHistory", "ReplayFailure", "ReplayResult", "Replayer",
                  "WorkflowTestEnvironment"]
FROZEN_MEMBERS = {
    "Replayer": ["replay"],
    "ReplayResult": ["ok", "failure", "instance_id", "events"],
    "ReplayFailure": ["sequence", "event_type", "recorded", "now"],
    "WorkflowTestEnvironment": ["__enter__", "__exit__", "sleep", "mock_activity", "now"],
}


def test_every_frozen_name_is_exported() -> None:
    assert sorted(ledgerflow.testing.__all__) == sorted(FROZEN_EXPORTS)
    for name in FROZEN_EXPORTS:
        assert getattr(ledgerflow.testing, name, None) is not None, name


def test_every_frozen_member_is_there() -> None:
    for cls_name, members in FROZEN_MEMBERS.items():
        cls = getattr(ledgerflow.testing, cls_name)
        fields = getattr(cls, "__dataclass_fields__", {})
        missing = [m for m in members if not hasattr(cls, m) and m not in fields]
        assert missing == [], f"{cls_name} lost {missing}"
