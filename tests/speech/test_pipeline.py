"""The speech pipeline's commands on the shared small run: evaluate --data writes WER
and CER that match the export's own transcripts; predict reads a folder of WAVs."""

import json
import os

import jiwer
import pytest

from pipelines.common import export
from pipelines.common.cli import main
from pipelines.speech import TASK
from tests.speech.test_data import _fsdd


@pytest.fixture(scope="module")
def run(small_run):
    return small_run("speech")


def test_evaluate_data_writes_wer_and_cer_the_export_agrees_with(run, tmp_path, capsys):
    folder = _fsdd(tmp_path / "fsdd", speakers=("ann",), takes=(0, 1), digits=range(4))
    out = tmp_path / "eval"
    assert main(TASK, ["evaluate", "--preset", "small", "--workdir", run["workdir"], "-q",
                       "--data", folder, "--out", str(out)]) == 0
    report = json.load(open(out / "metrics.json"))
    assert report["utterances"] == 8 and {"wer", "cer"} <= set(report)
    assert f"WER {report['wer']:.4f}" in capsys.readouterr().out
    files = sorted(os.listdir(folder))
    audio = [open(os.path.join(folder, f), "rb").read() for f in files]
    rows = export.predict(run["version_dir"], {"audio": audio})
    words = ("zero", "one", "two", "three")
    refs = [words[int(f[0])] for f in files]
    hyps = [row["transcript"].decode() for row in rows]
    assert report["wer"] == pytest.approx(jiwer.wer(refs, hyps))
    assert report["cer"] == pytest.approx(jiwer.cer(refs, hyps))


def test_predict_reads_a_folder_of_wavs(run, tmp_path, capsys):
    folder = _fsdd(tmp_path / "fsdd", speakers=("ann",), takes=(0,), digits=range(3))
    capsys.readouterr()
    assert main(TASK, ["predict", "--export-dir", run["export_dir"], "--file", folder]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and [line.split()[-1] for line in lines] == sorted(os.listdir(folder))
    (tmp_path / "empty").mkdir()
    assert main(TASK, ["predict", "--export-dir", run["export_dir"], "--file",
                       str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'empty'}: the folder holds no files "
                                       "ending in .wav\n")
