"""``python -m losslens`` and the ``losslens`` command (its console-script entry point)."""


def main() -> None:
    """Run the command line, Python's garbage collector set for a command before its modules load.

    Loading the command line (Typer and losslens's modules) cost 3.4 ms of cycle collection at
    Python's default threshold (see :func:`losslens.threads.collect_cycles_less_often`).
    """
    from .threads import collect_cycles_less_often

    collect_cycles_less_often()
    from .cli import main as command_line

    command_line()


if __name__ == "__main__":
    main()
