"""Reading users' files with errors that name the file, line and field.

``read_table`` reads CSV, TSV or JSONL into ``Row``s (line number + field dict);
every problem raises ``DataError``, a ValueError whose message starts with
``file:line:``, the way compilers report, so a user can jump to it.
"""

import csv
import io
import dataclasses
import json
import os

FORMATS = ("csv", "tsv", "jsonl")


class DataError(ValueError):
    """Bad input data; the message names the file, and the line and field when known."""

    def __init__(self, path, message, line=None, field=None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        what = f" field {field!r}:" if field is not None else ""
        super().__init__(f"{where}:{what} {message}")
        self.path, self.line, self.field = path, line, field


@dataclasses.dataclass(frozen=True)
class Row:
    line: int
    fields: dict


def guess_format(path):
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    return {"json": "jsonl", "ndjson": "jsonl"}.get(ext, ext)


def read_text(path, encoding="utf-8"):
    """The file's text; DataError for a missing, empty or undecodable file."""
    if not os.path.exists(path):
        raise DataError(path, "no such file")
    if os.path.isdir(path):
        raise DataError(path, "is a directory, expected a file")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.strip():
        raise DataError(path, "the file is empty")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(
            path,
            f"column {column}: bytes {raw[e.start:e.end]!r} are not valid {encoding} "
            "(convert the file to UTF-8)",
            line=line,
        ) from None


def read_table(path, columns, fmt=None, encoding="utf-8"):
    """Rows of a CSV/TSV (with a header line) or JSONL file, keeping ``columns``.

    Args:
        path: the file.
        columns: field names every row must have (e.g. ``("text", "label")``).
        fmt: "csv", "tsv" or "jsonl"; None guesses from the extension.
    Returns a list of ``Row(line, {column: str})``. Raises DataError.
    """
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise DataError(path, f"unknown format {fmt!r}; expected one of {FORMATS}")
    text = read_text(path, encoding)
    if fmt == "jsonl":
        return _read_jsonl(path, text, columns)
    return _read_delimited(path, text, columns, "\t" if fmt == "tsv" else ",")


def _read_delimited(path, text, columns, delimiter):
    # Not str.splitlines(): it also breaks at \x85, \x1c... inside fields.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(
            path,
            f"missing column(s) {missing}; the header has {header} "
            "(choose columns with --set text_column=... label_column=...)",
            line=1,
        )
    index = {c: header.index(c) for c in columns}
    rows = []
    for values in reader:
        line = reader.line_num
        if not values or not any(v.strip() for v in values):
            continue
        if len(values) < len(header):
            short = [c for c in columns if index[c] >= len(values)]
            if short:
                raise DataError(
                    path, f"row has {len(values)} fields, header has {len(header)}",
                    line=line, field=short[0],
                )
        rows.append(Row(line, {c: values[index[c]] for c in columns}))
    if not rows:
        raise DataError(path, "no data rows after the header")
    return rows


def _read_jsonl(path, text, columns):
    rows = []
    for line, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DataError(path, f"invalid JSON ({e.msg}, column {e.colno})", line=line) from None
        if not isinstance(obj, dict):
            raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", line=line)
        for c in columns:
            if c not in obj:
                raise DataError(path, f"missing; the object has {sorted(obj)}", line=line, field=c)
        rows.append(Row(line, {c: obj[c] if isinstance(obj[c], str) else json.dumps(obj[c])
                               for c in columns}))
    if not rows:
        raise DataError(path, "no JSON lines")
    return rows
