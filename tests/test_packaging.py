"""`pip install .` gives a working losslens: a real wheel in a fresh virtual environment."""

import os
import shutil
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


@pytest.mark.slow
def test_without_a_c_compiler_the_wheel_installs_and_gives_the_same_json(tmp_path):
    # A user without a compiler: setup.py's extension is optional, so the wheel is built
    # without it, and losslens computes every figure with numpy, to the same bytes. The build
    # runs on a copy of the sources, so that no library from an earlier build is packaged.
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, tree / name)
    shutil.copytree(REPO / "src", tree / "src",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "*.egg-info"))
    out = tmp_path / "wheel"
    env = {**os.environ, "CC": "false", "LDSHARED": "false"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(tree)],
                   check=True, env=env, capture_output=True)
    (built,) = out.glob("losslens-*.whl")
    assert not [n for n in zipfile.ZipFile(built).namelist() if n.endswith((".so", ".pyd"))]
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(built)],
                   check=True)
    example = REPO / "example_data" / "digits_multiclass.parquet"
    # This interpreter's environment has the dependencies, and maybe an editable install of
    # losslens whose import hook would win over PYTHONPATH: the hook is removed first.
    run_from = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
                "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in getattr(f, '__module__', '')]; "
                "import losslens, losslens.fused; assert losslens.__file__.startswith(sys.path[0]), losslens.__file__; "
                "print(losslens.fused.library() is not None, file=sys.stderr); "
                "runpy.run_module('losslens', run_name='__main__')")

    def metrics_json(where: Path) -> tuple[bytes, str]:
        run = subprocess.run([sys.executable, "-c", run_from, str(where), "metrics", str(example), "--json", "-"],
                             capture_output=True, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        return run.stdout, run.stderr.decode().splitlines()[0]

    without, loaded = metrics_json(site)
    assert loaded == "False"  # numpy computed it
    with_library, loaded = metrics_json(REPO / "src")
    assert loaded == str(_can_compile())
    assert without == with_library
