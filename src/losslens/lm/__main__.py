"""``python -m losslens.lm FILE...``: evaluate token / sequence files and print the JSON document.

A stop-gap entry point (used by benchmarks/bench_lm.py) until the main command line dispatches
language-model layouts itself; ``--lm-eval`` reads lm-evaluation-harness outputs instead.
"""

from __future__ import annotations

import json
import sys


def main(argv=None) -> int:
    """Evaluate the files named in ``argv`` and print JSON; errors are one line and exit 2."""
    from ..errors import LosslensError

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m losslens.lm [--lm-eval] INPUT...")
        return 0 if args else 2
    try:
        if args[0] == "--lm-eval":
            from .lm_eval import evaluate_lm_eval

            document = evaluate_lm_eval(args[1:]).to_dict()
        else:
            from .engine import evaluate_lm_runs

            document = evaluate_lm_runs(args).to_dict()
    except LosslensError as exc:
        print(f"losslens: error: {exc}", file=sys.stderr)
        return 2
    json.dump(document, sys.stdout, indent=1, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
