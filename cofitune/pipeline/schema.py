"""The config schema (``workflow/schemas/config.schema.yaml``): every configurable default is written there, once.

:func:`schema_default` reads a default (command-line flags that mirror a config key take theirs from here);
:func:`coerce_cli_scalars` types the strings that ``snakemake --config`` leaves in nested values."""

from __future__ import annotations

import functools

import yaml

from cofitune import repo

SCHEMA = ("workflow", "schemas", "config.schema.yaml")


@functools.cache
def schema() -> dict:
    """The config schema, parsed (read once per process)."""
    return yaml.safe_load(repo.file(*SCHEMA).read_text(encoding="utf-8"))


def schema_default(*keys: str):
    """The schema's default at ``keys`` (e.g. ``schema_default("importance", "dropout")``): command-line
    flags that mirror a config key take their default from here, so it is written in one place."""
    node = schema()
    for key in keys:
        node = node["properties"][key]
    return _filled(node["default"], node)


def _filled(value, node: dict):
    """An object's default with its properties' own defaults filled in (``uni: {}`` -> ``{spec: 0.5, ...}``), as
    validation fills them in a config."""
    if not isinstance(value, dict) or "properties" not in node:
        return value
    out = dict(value)
    for key, child in node["properties"].items():
        if key not in out and "default" in child:
            out[key] = _filled(child["default"], child)
    return out


def _subschemas(node: dict) -> list[dict]:
    return [node, *node.get("oneOf", []), *node.get("anyOf", [])]


def _child_schema(node: dict, key) -> dict | None:
    """Schema of ``key`` inside an object (or of an item inside an array) described by ``node``."""
    for sub in _subschemas(node):
        if isinstance(key, int):
            if isinstance(sub.get("items"), dict):
                return sub["items"]
        elif key in sub.get("properties", {}):
            return sub["properties"][key]
        elif isinstance(sub.get("additionalProperties"), dict):
            return sub["additionalProperties"]
    return None


def coerce_cli_scalars(config: dict, schema: dict) -> list[str]:
    """Type the strings that ``snakemake --config`` leaves in nested values, where the schema says so.

    Snakemake parses ``--config key=VALUE`` with YAML's BaseLoader, so inside a mapping every scalar
    stays a string: ``--config 'search={enabled: true, mode: exhaustive}'`` gives ``enabled: "true"``,
    which the schema then rejects. A string that the schema rejects at its place, and whose reading as
    an int, a float or YAML (``10``, ``1e-4``, ``true``, ``null``) it accepts, is replaced by that
    reading; every other value is left as it is, so a genuinely bad value still fails validation with
    its key named. Returns the key paths that were typed (for the log).
    """
    from jsonschema import Draft7Validator

    typed: list[str] = []

    def walk(value, node: dict, path: str):
        if isinstance(value, str):
            if Draft7Validator(node).is_valid(value):
                return value
            for parse in (int, float, yaml.safe_load):  # Snakemake's order for top-level values
                try:
                    parsed = parse(value)
                except (ValueError, yaml.YAMLError):
                    continue
                if not isinstance(parsed, str) and Draft7Validator(node).is_valid(parsed):
                    typed.append(path)
                    return parsed
            return value
        if isinstance(value, dict):
            for k, v in value.items():
                child = _child_schema(node, k)
                if child is not None:
                    value[k] = walk(v, child, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list):
            child = _child_schema(node, 0)
            if child is not None:
                value[:] = [walk(v, child, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    walk(config, schema, "")
    return typed


