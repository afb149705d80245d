import json

from medimg.common.tables import read_csv, render_records, write_csv, write_json


def test_csv_round_trip_and_json(tmp_path):
    rows = [{"id": 1, "x": 1.5, "note": None}, {"id": 2, "x": 2.0, "note": "b"}]
    path = write_csv(tmp_path / "r.csv", rows)
    assert path.read_text() == "id,x,note\n1,1.5,\n2,2,b\n"
    assert read_csv(path, required=("id", "x"))[1] == {"id": "2", "x": "2", "note": "b"}
    assert json.loads(write_json(tmp_path / "r.json", {"nan": float("nan")}).read_text()) == {"nan": None}


def test_render_formats():
    rows = [{"a": 1, "bb": 0.25}]
    assert render_records(rows, "table") == "a  bb\n1  0.25"
    assert render_records(rows, "csv") == "a,bb\n1,0.25"
    assert json.loads(render_records(rows, "json")) == rows
