"""Raw data files, read and checked record by record: JSONL, JSON arrays and header-less TSV. A bad record
raises ``DataError("file:line: what is wrong")`` (``file:item N:`` in a JSON array), never a silent skip (the
release replaced corrupt lines with the previous sample, docs/method.md section 6, item 8)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


class DataError(ValueError):
    """A data file is malformed; the message starts with ``file:line:``."""


def iter_jsonl(path: str | Path, required: dict[str, type]) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for each non-empty line, validating required field types."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}: invalid JSON ({err.msg} at column {err.colno})") from err
            if not isinstance(record, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            check_fields(path, lineno, record, required)
            yield lineno, record


def iter_json_array(path: str | Path, required: dict[str, type]) -> Iterator[tuple[str, dict]]:
    """Yield ``("item N", record)`` for each item of a JSON array file (N counts from 1).

    An item that is a 1-element list holding an object (lawyer-llama's 1-turn conversations) is
    unwrapped. Errors read ``file:item N: what is wrong`` (``file: ...`` for whole-file problems).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: invalid JSON ({err.msg} at column {err.colno})") from err
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON array, got {type(items).__name__}")
    for number, item in enumerate(items, start=1):
        where = f"item {number}"
        if isinstance(item, list):
            if len(item) != 1:
                raise DataError(f"{path}:{where}: expected a 1-turn list [{{...}}], got {len(item)} turns")
            item = item[0]
        if not isinstance(item, dict):
            raise DataError(f"{path}:{where}: expected a JSON object, got {type(item).__name__}")
        check_fields(path, where, item, required)
        yield where, item


def iter_tsv(path: str | Path, required: dict[str, type]) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for a header-less TSV whose columns are the ``required`` fields."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    fields = list(required)
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            values = line.split("\t")
            if len(values) != len(fields):
                raise DataError(f"{path}:{lineno}: expected {len(fields)} tab-separated fields "
                                f"({', '.join(fields)}), got {len(values)}")
            record = dict(zip(fields, values))
            for field in fields:
                if not record[field].strip():
                    raise DataError(f"{path}:{lineno}: field {field!r} is empty")
            yield lineno, record


def check_fields(path: Path, where, record: dict, required: dict[str, type]) -> None:
    """Every ``required`` field is present with its type (``where``: the line number or ``item N``)."""
    for field, kind in required.items():
        if field not in record:
            raise DataError(f"{path}:{where}: missing field {field!r}")
        if not isinstance(record[field], kind):
            raise DataError(f"{path}:{where}: field {field!r} must be {kind.__name__}, "
                            f"got {type(record[field]).__name__}")


def non_empty_strings(value, path: Path, where, field: str) -> list[str]:
    """``value`` if it is a non-empty list of non-empty strings, else a DataError naming ``field``."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise DataError(f"{path}:{where}: field {field!r} must be a non-empty list of non-empty strings")
    return value
