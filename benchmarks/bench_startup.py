"""Start-up benchmark: `losslens --help`, `losslens metrics --help` and the import of a classifier run.

Usage::

    .venv/bin/python benchmarks/bench_startup.py [--repeats 10] [--detail]

Each figure is the median wall time of ``--repeats`` fresh processes (after one warm-up run),
printed beside ``python -c pass`` (the interpreter alone) and checked against the goal of the
speed issue: 0.15 s for ``losslens metrics --help`` and for importing what a classifier run
needs. "What a classifier run needs" is measured, not listed: one ``losslens metrics`` run on
the bundled ``example_data/breast_cancer_binary.csv`` reports the losslens modules it loaded,
and the timed process imports exactly those (numpy and pyarrow come with them). pandas, which
pyarrow imports on its first conversion, is not part of it: a run pays it, an import does not.
The import is timed up to its end: the process then leaves with ``os._exit``. A bare ``python
-c "import ..."`` goes on to the interpreter's exit, whose last garbage collection searches every
object the imports made (about 20 ms); a run does not pay that (the command freezes its objects
for the exit: ``losslens.threads.leave_objects_to_the_exit``). That whole process is printed on
the next line, as the figure of the rounds before the eleventh, without a goal.
``--detail`` also prints the slowest imports of each case (``python -X importtime``).
Exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "example_data" / "breast_cancer_binary.csv"
#: The goal of the speed issue (#22) for `metrics --help` and a classifier run's imports.
GOAL_SECONDS = 0.15

_LOADED = """
import contextlib, io, json, runpy, sys
sys.argv = ["losslens", "metrics", sys.argv[1]]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        runpy.run_module("losslens", run_name="__main__")
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in sys.modules if m == "losslens" or m.startswith("losslens."))))
"""


def _env() -> dict:
    # The checkout's package, whatever is installed. Bytecode is written by the warm-up run and
    # read after, as an installed package's is: compiling every module each time would
    # measure the compiler (about 0.1 s for a classifier run's modules).
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def classifier_modules() -> list[str]:
    """The losslens modules one `losslens metrics FILE.csv` run loads (found by running it)."""
    done = subprocess.run([sys.executable, "-c", _LOADED, str(EXAMPLE)], capture_output=True, text=True,
                          env=_env(), check=True, cwd=REPO)
    return [m for m in json.loads(done.stdout.splitlines()[-1]) if m != "losslens.__main__"]


def median_wall(command: list[str], repeats: int) -> float:
    """Median wall seconds of ``command`` as a whole process (one warm-up run not counted)."""
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), check=True, cwd=REPO)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def slowest_imports(command: list[str], n: int = 8) -> list[tuple[float, str]]:
    """The ``n`` largest cumulative import times of top-level imports (``-X importtime``), seconds."""
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True,
                          env=_env(), cwd=REPO)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            if name.startswith(" ") and not name.startswith("   "):  # imported by the program itself
                rows.append((int(cumulative) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:n]


def main(argv=None) -> int:
    """Time every case, print the table, check the goals."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--detail", action="store_true", help="print the slowest imports of each case")
    args = parser.parse_args(argv)

    modules = classifier_modules()
    python = sys.executable
    cases = [
        ("python -c pass", [python, "-c", "pass"], None),
        ("losslens --help", [python, "-m", "losslens", "--help"], None),
        ("losslens metrics --help", [python, "-m", "losslens", "metrics", "--help"], GOAL_SECONDS),
        (f"import of a classifier run ({len(modules)} losslens modules)",
         [python, "-c", f"import {', '.join(modules)}; import os; os._exit(0)"], GOAL_SECONDS),
        ("  the same, then the interpreter's exit", [python, "-c", "import " + ", ".join(modules)], None),
    ]
    print(f"{'case':<52} {'median s':>9} {'- python':>9} {'goal':>6}")
    missed = []
    base = None
    for name, command, goal in cases:
        seconds = median_wall(command, args.repeats)
        base = seconds if base is None else base
        verdict = "" if goal is None else ("ok" if seconds <= goal else "MISSED")
        if verdict == "MISSED":
            missed.append(name)
        print(f"{name:<52} {seconds:9.3f} {seconds - base:9.3f} {'' if goal is None else goal:>6} {verdict}")
        if args.detail and goal is not None:
            for cumulative, module in slowest_imports(command):
                print(f"    {cumulative:7.3f} s  {module}")
    print(f"median of {args.repeats} runs each; load average {os.getloadavg()[0]:.2f} "
          "(on a busy machine every figure grows; compare with `python -c pass`)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
