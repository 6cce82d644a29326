"""project.yml's per-task conversion: only the config's data set, and a hint
instead of a traceback when the raw files are missing."""

from pathlib import Path

import srsly
from convert_task import TASKS, main

ROOT = Path(__file__).resolve().parent.parent


def test_project_convert_task_converts_only_its_data(tmp_path):
    data = tmp_path / "data" / "wnut17"
    data.mkdir(parents=True)
    for split in ("train", "dev"):
        (data / f"{split}.conll").write_text("Angela\tB-person\nMerkel\tI-person\nspoke\tO\n\n", encoding="utf8")
    assert main("ner", str(tmp_path / "data"), str(tmp_path / "corpus")) == 0
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == ["wnut17_dev.spacy", "wnut17_train.spacy"]


def test_project_convert_task_missing_data_says_what_to_do(tmp_path, capsys):
    assert main("nested_ner", str(tmp_path), str(tmp_path / "corpus")) == 1
    err = capsys.readouterr().err
    assert "raw data for 'nested_ner' is missing" in err and "spacy project assets" in err and "--vars.data" in err
    assert not (tmp_path / "corpus").exists()


def test_project_all_workflow_converts_per_task_and_every_config_has_data():
    project = srsly.read_yaml(ROOT / "project.yml")
    assert project["workflows"]["all"][0] == "convert-task"
    for name in TASKS:
        assert (ROOT / "configs" / f"{name}.cfg").exists()


def test_project_convert_task_rel_and_coref(tmp_path):
    data = tmp_path / "data"
    (data / "conll04").mkdir(parents=True)
    record = {
        "tokens": ["Booth", "shot", "Lincoln", "."],
        "entities": [{"type": "Peop", "start": 0, "end": 1}, {"type": "Peop", "start": 2, "end": 3}],
        "relations": [{"type": "Kill", "head": 0, "tail": 1}],
    }
    for split in ("train", "dev"):
        srsly.write_json(data / "conll04" / f"{split}.json", [record])
        folder = data / "litbank_coref" / split
        folder.mkdir(parents=True)
        lines = ["#begin document (doc); part 000", "doc\t0\t0\tShe\t_\t(1)", "doc\t0\t1\tsaw\t_\t-"]
        lines += ["doc\t0\t2\therself\t_\t(1)", "", "#end document"]
        (folder / "doc.conll").write_text("\n".join(lines) + "\n", encoding="utf8")
    assert main("rel", str(data), str(tmp_path / "corpus")) == 0
    assert main("coref", str(data), str(tmp_path / "corpus")) == 0
    names = sorted(p.name for p in (tmp_path / "corpus").iterdir())
    assert names == ["conll04_dev.spacy", "conll04_train.spacy", "litcoref_dev.spacy", "litcoref_train.spacy"]
