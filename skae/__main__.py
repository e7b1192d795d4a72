"""Command line: ``skae demo`` or ``python -m skae demo``."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skae`` command.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        The exit status.

    Examples
    --------
    >>> from skae.__main__ import main
    >>> main(["--help"])  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(prog="skae", description="skae command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="fit an AutoEncoder beside PCA on the 8x8 digits and compare"
    )
    demo.add_argument("--output", default="skae_demo.png", help="PNG path (default: %(default)s)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        run_demo(output=args.output, verbose=0 if args.quiet else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
