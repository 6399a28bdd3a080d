"""Outputs never destroy data (issue 10 §1): refusals before reading, atomic files, special files in place.

Special files are made inside a temporary folder only -- a link to /proc/self/fd/1, a FIFO from
os.mkfifo, a character device from os.mknod when root -- never the machine's real /dev entries.
"""

import json
import os
import stat
import subprocess
import sys
import threading

import pandas as pd
import pytest
from typer.testing import CliRunner

from losslens.cli import BAD_INPUT, OK, app
from losslens.errors import UsageError
from losslens.evaluation import FORMAT_VERSION
from losslens.output import StagedFile, check_outputs, is_special, write_text

runner = CliRunner()


@pytest.fixture
def predictions(tmp_path):
    path = tmp_path / "v.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "label": [1, 0, 1], "y_prob": [0.9, 0.2, 0.6]}).to_csv(path, index=False)
    return path


def _refused(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == BAD_INPUT, result.output
    assert result.stderr == f"losslens: error: {message}\n"
    assert "Traceback" not in result.output
    return result


def test_an_output_over_its_own_input_is_refused_and_the_input_kept(predictions):
    before = predictions.read_bytes()
    _refused(["report", str(predictions), "-o", str(predictions)],
             f"-o {predictions}: is the input {predictions}; writing there would destroy it, choose another output path")
    _refused(["metrics", str(predictions), "--json", str(predictions)],
             f"--json {predictions}: is the input {predictions}; writing there would destroy it, choose another output path")
    assert predictions.read_bytes() == before


def test_a_link_or_hard_link_to_the_input_is_the_input(predictions, tmp_path):
    link, hard = tmp_path / "link.json", tmp_path / "hard.json"
    link.symlink_to(predictions)
    os.link(predictions, hard)
    before = predictions.read_bytes()
    _refused(["metrics", str(predictions), "--json", str(link)],
             f"--json {link}: is the input {predictions}; writing there would destroy it, choose another output path")
    _refused(["metrics", str(predictions), "--json", str(hard)],
             f"--json {hard}: is the input {predictions}; writing there would destroy it, choose another output path")
    assert predictions.read_bytes() == before and link.is_symlink()


def test_an_output_inside_an_input_folder_or_matching_an_input_pattern_is_refused(predictions, tmp_path):
    inside = tmp_path / "per_example.csv"
    _refused(["metrics", str(tmp_path), "--per-example", str(inside)],
             f"--per-example {inside}: is inside the input folder {tmp_path}; it would be read as part of the next "
             "run, write it outside that folder")
    pattern = str(tmp_path / "*.csv")
    _refused(["metrics", pattern, "--per-example", str(inside)],
             f"--per-example {inside}: matches the input pattern {pattern}; it would be read as part of the next run, "
             "choose a name the pattern does not match")
    assert not inside.exists()


def test_two_outputs_on_one_file_and_a_folder_as_output_are_refused(predictions, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _refused(["report", str(predictions), "--json", str(out / "r"), "-o", str(out / "r")],
             f"-o {out / 'r'}: is the same file as --json {out / 'r'}; give each output its own path")
    _refused(["report", str(predictions), "-o", str(out) + "/"],
             f"-o {out}/: is a folder; give a file name, e.g. {out}/report.html")
    assert list(out.iterdir()) == []


def test_refusal_comes_before_anything_is_read(tmp_path):
    # The input is not even a prediction file: the output check alone decides.
    broken = tmp_path / "broken.csv"
    broken.write_text("not,a\nprediction,file\n")
    _refused(["metrics", str(broken), "--json", str(broken)],
             f"--json {broken}: is the input {broken}; writing there would destroy it, choose another output path")


def test_check_outputs_allows_standard_output_and_distinct_files(predictions, tmp_path):
    check_outputs([("--json", "-"), ("-o", str(tmp_path / "r.html"))], [str(predictions)])
    with pytest.raises(UsageError, match="is the same file as --json"):
        check_outputs([("--json", str(tmp_path / "a")), ("-o", str(tmp_path / "sub" / ".." / "a"))], [])


def test_regular_file_is_written_whole_and_a_link_stays_a_link(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_text(link, "new\n")
    assert link.is_symlink() and target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]  # no temporary left


def test_an_error_while_staging_leaves_the_earlier_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("earlier\n")
    staged = StagedFile(target)
    with open(staged.path, "w") as handle:
        handle.write("half")
    staged.abort()
    assert target.read_text() == "earlier\n" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_link_to_this_process_standard_output_is_written_in_place(predictions, tmp_path):
    # /dev/stdout is a link to /proc/self/fd/1; a link made here stands for it.
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    assert is_special(link)
    done = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(predictions), "--json", str(link), "-q"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == OK, done.stderr
    assert json.loads(done.stdout)["runs"][0]["overall"]["n_examples"] == 3
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


def test_standard_output_redirected_to_a_log_is_appended_to_never_replaced(predictions, tmp_path):
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    log = tmp_path / "job.log"
    log.write_text("earlier line\n")
    inode = log.stat().st_ino
    with open(log, "a") as handle:
        done = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(predictions), "--json", str(link), "-q"],
                              stdout=handle, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert done.returncode == OK, done.stderr
    text = log.read_text()
    assert text.startswith("earlier line\n{") and json.loads(text[len("earlier line\n"):])["format_version"] == FORMAT_VERSION
    assert log.stat().st_ino == inode


def test_a_named_pipe_is_written_and_stays_a_pipe(predictions, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    # A daemon, so that a reader still blocked in open() (the command failed before opening
    # the pipe) cannot keep pytest from exiting.
    reader = threading.Thread(target=lambda: received.append(open(fifo).read()), daemon=True)
    reader.start()
    done = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(predictions), "--json", str(fifo), "-q"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    reader.join(timeout=60)
    if reader.is_alive():  # never opened for writing: let the reader's open() return
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=10)
    assert done.returncode == OK, done.stderr
    assert received, "nothing was written to the pipe"
    assert json.loads(received[0])["runs"][0]["name"] == "v"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_character_device_stays_a_device(predictions, tmp_path):
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the null device's numbers, in tmp_path
    except (PermissionError, OSError):
        pytest.skip("creating a device node needs root")
    result = runner.invoke(app, ["report", str(predictions), "-o", str(null), "--json", str(null) + "2", "-q"])
    assert result.exit_code == OK, result.output
    assert stat.S_ISCHR(os.stat(null).st_mode)


def test_process_substitution_path_is_written_directly(tmp_path):
    read_end, write_end = os.pipe()
    try:
        path = f"/dev/fd/{write_end}"
        if not os.path.exists(path):
            pytest.skip("no /dev/fd on this system")
        assert is_special(path)
        write_text(path, "{}\n")
        os.close(write_end)
        write_end = None
        assert os.read(read_end, 100) == b"{}\n"
    finally:
        os.close(read_end)
        if write_end is not None:
            os.close(write_end)


def test_per_example_takes_a_detected_id_column(predictions, tmp_path):
    out = tmp_path / "out" / "pe.csv"
    result = runner.invoke(app, ["metrics", str(predictions), "--per-example", str(out), "-q"])
    assert result.exit_code == OK, result.output
    table = pd.read_csv(out)
    assert list(table.columns[:4]) == ["run", "source", "row", "id"]  # no --id: the layout found it
    assert list(table["id"]) == ["a", "b", "c"]


def test_a_report_beside_the_parts_it_describes_is_allowed(predictions, tmp_path):
    # A folder read takes .csv/.parquet parts only: an HTML or JSON file there is never read back.
    result = runner.invoke(app, ["report", str(tmp_path), "-o", str(tmp_path / "report.html"),
                                 "--json", str(tmp_path / "m.json"), "-q"])
    assert result.exit_code == OK, result.output
    assert (tmp_path / "report.html").exists() and json.loads((tmp_path / "m.json").read_text())["runs"]


def test_json_to_a_link_to_standard_output_keeps_the_text_on_standard_error(predictions, tmp_path):
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    done = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(predictions), "--json", str(link)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == OK, done.stderr
    assert json.loads(done.stdout)["runs"][0]["name"] == "v"  # nothing but the JSON
    assert done.stderr.startswith("run 'v': 3 examples")


def test_an_output_over_the_labels_file_is_refused_before_reading(tmp_path):
    # --labels names a file that is read like an input: writing the JSON there would destroy it.
    (tmp_path / "preds.csv").write_text("id,p_a,p_b\n1,0.2,0.8\n2,0.7,0.3\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("id,label\n1,b\n2,a\n")
    before = truth.read_bytes()
    result = CliRunner().invoke(app, ["metrics", str(tmp_path / "preds.csv"), "--labels", str(truth),
                                      "--id", "id", "--json", str(truth)])
    assert result.exit_code == BAD_INPUT
    assert f"--json {truth}: is the input {truth}" in result.output
    assert truth.read_bytes() == before
