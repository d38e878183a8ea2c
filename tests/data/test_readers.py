import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from cockatoo_ml.data.readers import find_source_files, read_source_file
from cockatoo_ml.data.sources import ReaderOptions
from cockatoo_ml.errors import DataError

from .helpers import spec


def test_csv_counts_bad_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('text,label\nhello,1\n"a, quoted, text",0\ntoo,many,fields\nbye,0\n')
    raw = read_source_file(path, spec())
    assert raw.frame["text"].tolist() == ["hello", "a, quoted, text", "bye"]
    assert raw.bad_rows == 1


def test_csv_keeps_literal_na_strings_as_text(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("text,label\nNA,1\nnull,0\n,1\n")
    frame = read_source_file(path, spec()).frame
    assert frame["text"].tolist()[:2] == ["NA", "null"] and pd.isna(frame["text"][2])


def test_tsv_without_header_and_without_quoting(tmp_path: Path) -> None:
    path = tmp_path / "SMSSpamCollection"
    path.write_text('ham\tHe said "hi\nspam\t"Free" entry\n')
    options = ReaderOptions(header=False, column_names=("label", "text"), quoting=False)
    frame = read_source_file(path, spec(fmt="tsv", reader=options)).frame
    assert frame.to_dict("list") == {"label": ["ham", "spam"], "text": ['He said "hi', '"Free" entry']}


def test_csv_custom_separator(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("comment;isHate\nyou are awful, really;0.8\nnice;0.0")  # no final newline, like ETHOS
    frame = read_source_file(path, spec(reader=ReaderOptions(separator=";"))).frame
    assert frame["isHate"].tolist() == [0.8, 0.0] and frame["comment"][0] == "you are awful, really"


def test_json_record_path_and_nested_fields_become_dotted_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    document = {"dataset": "x", "instances": [
        {"id": 1, "instance": "hi", "annotations": {"toxicity": {"majority_human": "0"}}},
        {"id": 2, "instance": "yo", "annotations": {"toxicity": {"majority_human": "1"}}},
        "not a record",
    ]}
    path.write_text(json.dumps(document))
    raw = read_source_file(path, spec(fmt="json", reader=ReaderOptions(record_path="instances")))
    assert raw.frame["annotations.toxicity.majority_human"].tolist() == ["0", "1"]
    assert raw.bad_rows == 1


def test_json_object_without_record_path_names_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"meta": 1, "instances": []}))
    with pytest.raises(DataError, match=r"set reader.record_path to one of \['instances', 'meta'\]"):
        read_source_file(path, spec(fmt="json"))
    with pytest.raises(DataError, match="record_path 'rows' not found"):
        read_source_file(path, spec(fmt="json", reader=ReaderOptions(record_path="rows")))


def test_broken_json_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("[{")
    with pytest.raises(DataError, match="cannot parse"):
        read_source_file(path, spec(fmt="json"))


def test_jsonl_counts_broken_lines_and_missing_keys_stay_missing(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "a", "S": 1}\n{broken\n{"text": "b"}\n[1, 2]\n\n')
    raw = read_source_file(path, spec(fmt="jsonl"))
    assert raw.frame["text"].tolist() == ["a", "b"]
    assert raw.frame["S"].iloc[0] == 1 and pd.isna(raw.frame["S"].iloc[1])
    assert raw.bad_rows == 2


def test_jsonl_gz_and_nested_objects(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write('{"prompt": "x", "meta": {"S": 1}}\n{"prompt": "y", "meta": {"S": 0}}\n')
    frame = read_source_file(path, spec(fmt="jsonl.gz")).frame
    assert frame["meta.S"].tolist() == [1, 0]


def test_damaged_gzip_and_parquet_are_data_errors(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot read .*a.jsonl.gz"):
        read_source_file(tmp_path / "a.jsonl.gz", spec(fmt="jsonl.gz"))
    (tmp_path / "a.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot read parquet"):
        read_source_file(tmp_path / "a.parquet", spec(fmt="parquet"))


def test_parquet(tmp_path: Path) -> None:
    pd.DataFrame({"text": ["a", "b"], "label": [0, 1]}).to_parquet(tmp_path / "x.parquet")
    assert read_source_file(tmp_path / "x.parquet", spec(fmt="parquet")).frame["label"].tolist() == [0, 1]


def test_paired_text_files_pair_line_by_line(tmp_path: Path) -> None:
    (tmp_path / "train_text.txt").write_text("first tweet \nsecond\u2028with a line separator\n")
    (tmp_path / "train_labels.txt").write_text("0\n1\n")
    frame = read_source_file(tmp_path / "train_text.txt", spec(fmt="paired_txt")).frame
    assert frame.to_dict("list") == {"text": ["first tweet ", "second\u2028with a line separator"], "label": ["0", "1"]}


def test_paired_text_files_must_match(tmp_path: Path) -> None:
    (tmp_path / "val_text.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="no label file beside it.*val_labels.txt"):
        read_source_file(tmp_path / "val_text.txt", spec(fmt="paired_txt"))
    (tmp_path / "val_labels.txt").write_text("0\n")
    with pytest.raises(DataError, match="has 2 lines but val_labels.txt has 1"):
        read_source_file(tmp_path / "val_text.txt", spec(fmt="paired_txt"))


def test_find_source_files_is_sorted_and_defaults_by_format(tmp_path: Path) -> None:
    for name in ("b.csv", "a.csv", "c.txt", "train_text.txt", "train_labels.txt"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in find_source_files(spec(), tmp_path)] == ["a.csv", "b.csv"]
    assert [p.name for p in find_source_files(spec(fmt="paired_txt"), tmp_path)] == ["train_text.txt"]
    assert [p.name for p in find_source_files(spec(files=("c.*", "b.*")), tmp_path)] == ["b.csv", "c.txt"]


def test_json_tree_reads_nested_keys_as_columns_and_skips_what_is_not_a_list_of_texts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "catqa.json"
    document = {
        "Adult Content": {"Erotic text": ["q1", "q2"], "Humor": "not a list"},
        "Fraud": {"Phishing": ["q3", 7]},
        "Broken": ["a list where subcategories belong"],
    }
    path.write_text(json.dumps(document))
    options = ReaderOptions(tree_keys=("category", "subcategory"))
    raw = read_source_file(path, spec(fmt="json", reader=options))
    assert raw.frame.to_dict("list") == {
        "category": ["Adult Content", "Adult Content", "Fraud"],
        "subcategory": ["Erotic text", "Erotic text", "Phishing"],
        "text": ["q1", "q2", "q3"],
    }
    assert raw.bad_rows == 3  # the string leaf, the number 7 and the list at the category level
    assert "catqa.json: 3 entr" in caplog.text
