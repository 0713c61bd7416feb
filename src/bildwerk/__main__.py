"""``python -m bildwerk``: the same CLI as the ``bildwerk`` command."""

from bildwerk.cli import main

if __name__ == "__main__":
    main()
