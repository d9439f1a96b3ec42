"""A file's first rows as text (emulator/exportdata/preview.py), for Parquet and JSON Lines alike."""

from __future__ import annotations

import datetime as dt
import io

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from emulator.exportdata.preview import MAX_CELL_CHARS, MAX_ROWS, preview


def parquet_bytes(rows: list[dict[str, object]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


ROWS = [
    {
        "person": {
            "name": {"firstName": f"Ann{i}", "lastName": "<b>Lee</b>"},
            "birthDate": dt.date(1990, 1, 2),
        },
        "identityMap": [("email", [{"id": f"a{i}@example.com", "primary": True}])],
        "score": i,
    }
    for i in range(30)
]


def test_parquet_structs_become_dotted_columns_and_maps_json() -> None:
    schema = pa.schema(
        [
            (
                "person",
                pa.struct(
                    [
                        ("name", pa.struct([("firstName", pa.string()), ("lastName", pa.string())])),
                        ("birthDate", pa.date32()),
                    ]
                ),
            ),
            (
                "identityMap",
                pa.map_(pa.string(), pa.list_(pa.struct([("id", pa.string()), ("primary", pa.bool_())]))),
            ),
            ("score", pa.int64()),
        ]
    )
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(ROWS, schema=schema), sink)
    shown = preview(sink.getvalue(), "parquet", 5)
    assert shown.columns == [
        "person.name.firstName",
        "person.name.lastName",
        "person.birthDate",
        "identityMap",
        "score",
    ]
    assert shown.total_rows == 30
    assert len(shown.rows) == 5
    assert shown.rows[0][:3] == ["Ann0", "<b>Lee</b>", "1990-01-02"]  # text, as it is: the page escapes it
    assert orjson.loads(shown.rows[0][3]) == {"email": [{"id": "a0@example.com", "primary": True}]}
    assert shown.rows[4][4] == "4"


def test_json_lines_nested_objects_become_dotted_columns() -> None:
    lines = [
        {"person": {"name": {"firstName": "Bo"}}, "identityMap": {"ECID": [{"id": "1"}]}, "flag": True},
        {"person": {"name": {"firstName": "Cy", "lastName": "Day"}}, "extra": None},
    ]
    data = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"
    shown = preview(data, "json", 20)
    assert shown.columns == ["person.name.firstName", "identityMap", "flag", "person.name.lastName", "extra"]
    assert shown.rows == [
        ["Bo", '{"ECID":[{"id":"1"}]}', "true", "", ""],
        ["Cy", "", "", "Day", ""],
    ]
    assert shown.total_rows == 2


def test_rows_and_cells_are_bounded() -> None:
    long = [{"text": "x" * (MAX_CELL_CHARS * 3)} for _ in range(MAX_ROWS + 50)]
    shown = preview(parquet_bytes(long), "parquet", 10_000)
    assert len(shown.rows) == MAX_ROWS
    assert len(shown.rows[0][0]) == MAX_CELL_CHARS
