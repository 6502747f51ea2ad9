"""``python -m cpo``: the same command line as the ``cpo`` console script."""

from cpo.cli import main

if __name__ == "__main__":
    main()
