"""Command line: ``python -m gatoms <command>``.

    python -m gatoms run STEP --profile P [--force]   execute one step's notebook (what make calls)
    python -m gatoms params STEP --profile P          print the papermill parameters of a step
    python -m gatoms check --profile P                validate a profile file
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from gatoms.build import config, paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gatoms", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute one step's notebook with papermill")
    run.add_argument("step", choices=paths.STEPS)
    run.add_argument("--profile", default=os.environ.get("PROFILE", "tiny"))
    run.add_argument("--force", action="store_true", help="rebuild over artifacts made with another config")
    par = sub.add_parser("params", help="print a step's notebook parameters as JSON")
    par.add_argument("step", choices=paths.STEPS)
    par.add_argument("--profile", default="tiny")
    chk = sub.add_parser("check", help="validate a profile")
    chk.add_argument("--profile", default="tiny")
    args, rest = ap.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "run":
            from gatoms.build.runner import run_step

            run_step(args.step, args.profile, force=args.force)
        elif args.command == "params":
            print(json.dumps(config.step_parameters(args.profile, args.step), indent=2))
        elif args.command == "check":
            config.validate_profile(args.profile)
            print(f"profile {args.profile!r} is valid")
        else:  # extended by other modules' commands
            ap.error(f"unknown command {args.command}")
    except config.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
