"""The examples section every command's --help ends with."""

from __future__ import annotations


def examples(*lines: str) -> str:
    """A click epilog listing `lines` as they are typed (`\\b` keeps click from re-wrapping)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
