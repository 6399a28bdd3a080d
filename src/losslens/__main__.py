"""``python -m losslens``: the same as the ``losslens`` command."""

from .cli import main

if __name__ == "__main__":
    main()
