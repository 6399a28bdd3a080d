"""`pip install .` gives a working losslens: a real wheel in a fresh virtual environment."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_fused import _can_compile

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        check=True,
    )
    (path,) = out.glob("losslens-*.whl")
    return path


def test_wheel_ships_the_package_and_the_templates(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "losslens/cli.py" in names
    # Every module of the source tree ships (the package list in pyproject is explicit).
    for module in (REPO / "src").rglob("*.py"):
        assert module.relative_to(REPO / "src").as_posix() in names
    assert "losslens/templates/report.html" in names
    assert any(n.endswith("entry_points.txt") for n in names)


@pytest.mark.slow
def test_installed_wheel_runs_in_a_fresh_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, str(wheel)], check=True)
    # Run from an empty folder so that nothing is imported from the source tree.
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    example = REPO / "example_data" / "digits_multiclass.parquet"
    result = subprocess.run(
        [str(venv / "bin" / "losslens"), "metrics", str(example), "--json", "m.json"],
        cwd=work, capture_output=True, text=True, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "run 'digits_multiclass': 1,797 examples, 10 classes" in result.stdout
    assert (work / "m.json").exists()
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import losslens; print(losslens.__file__)"],
        cwd=work, capture_output=True, text=True, env=env, check=True,
    )
    assert str(venv) in where.stdout
    # The wheel carries the compiled scoring pass wherever it could be built (tests/test_fused.py
    # says when that is), and the installed package loads it.
    if _can_compile():
        assert any("/_fused" in n and n.endswith((".so", ".pyd")) for n in zipfile.ZipFile(wheel).namelist())
        loaded = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "from losslens import fused; print(fused.library() is not None)"],
            cwd=work, capture_output=True, text=True, env=env, check=True,
        )
        assert loaded.stdout.strip() == "True"
    report = subprocess.run(
        [str(venv / "bin" / "losslens"), "report", str(example), "-o", "r.html"],
        cwd=work, capture_output=True, text=True, env=env,
    )
    assert report.returncode == 0, report.stderr
    assert "<html" in (work / "r.html").read_text()
