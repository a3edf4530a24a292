"""Every config key says what it is and how to choose it, and docs/configuration.md is generated from those words."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs"))
import config_reference  # noqa: E402


def _undescribed(node: dict, path: str = "") -> list[str]:
    """Key paths of the properties under ``node`` (nested objects, list items, named entries, alternatives) that
    have no description."""
    missing = []
    for sub in (node, *node.get("oneOf", []), *node.get("anyOf", [])):
        for key, child in sub.get("properties", {}).items():
            here = f"{path}.{key}" if path else key
            if not str(child.get("description", "")).strip():
                missing.append(here)
            missing += _undescribed(child, here)
        if isinstance(sub.get("additionalProperties"), dict):
            missing += _undescribed(sub["additionalProperties"], f"{path}.<name>")
        if isinstance(sub.get("items"), dict):
            missing += _undescribed(sub["items"], f"{path}[]")
    return missing


def test_every_schema_key_has_a_description():
    schema = yaml.safe_load(config_reference.SCHEMA.read_text(encoding="utf-8"))
    assert not _undescribed(schema), f"config keys without a description: {_undescribed(schema)}"


def test_the_walk_finds_a_key_without_a_description_at_any_depth():
    schema = {"properties": {"a": {"description": "x", "properties": {"b": {"type": "integer"}}},
                             "m": {"description": "x", "items": {"properties": {"c": {}}}},
                             "o": {"description": "x", "additionalProperties": {"properties": {"d": {}}}}}}
    assert _undescribed(schema) == ["a.b", "m[].c", "o.<name>.d"]


def test_the_reference_lists_every_key_with_its_default(capsys):
    config_reference.main()
    out = capsys.readouterr().out
    for row in ("| `train.lr` | number > 0 | `4.0e-05` |", "| `evaluation.drift.enabled` | boolean | `true` |",
                "| `methods[].variant` | string | required |", "| `task_overrides.<name>.n_test` | integer ≥ 1 |  |"):
        assert row in out
    keys = [path for path, _, _ in config_reference.properties(yaml.safe_load(config_reference.SCHEMA.read_text()))]
    assert all(f"| `{k}` |" in out or f"## `{k}`" in out for k in keys)


def test_the_committed_reference_is_current(capsys):
    config_reference.main()
    assert (ROOT / "docs/configuration.md").read_text(encoding="utf-8") == capsys.readouterr().out, (
        "docs/configuration.md is stale: python docs/config_reference.py > docs/configuration.md")
