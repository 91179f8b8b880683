"""Command line: ``gatoms <command>`` (the console script) or ``python -m gatoms <command>``.

    gatoms run STEP --profile P [--force]   execute one step's notebook (what make calls)
    gatoms params STEP --profile P          print the papermill parameters of a step
    gatoms check --profile P                validate a profile file
    gatoms report --profile P               write figures/<P>/RESULTS.md from the metrics (make report)
    gatoms atlas --profile P                write figures/<P>/atlas.html (make atlas)
    gatoms seeds --profile P --seeds 0 1 2  write figures/<P>/SEEDS.md from P, P@seed1, P@seed2 (make seeds)
    gatoms compare --profiles tiny smol     write figures/COMPARISON.md: the paper and the profiles side by side
    gatoms steps                            the pipeline's step table
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from gatoms.build import config, paths, steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gatoms", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute one step's notebook with papermill")
    run.add_argument("step", choices=paths.STEPS)
    run.add_argument("--profile", default=os.environ.get("PROFILE", "tiny"))
    run.add_argument("--force", action="store_true", help="rebuild over artifacts made with another config")
    par = sub.add_parser("params", help="print a step's notebook parameters as JSON")
    par.add_argument("step", choices=paths.STEPS)
    par.add_argument("--profile", default="tiny")
    for name, what in (("check", "validate a profile"), ("report", "write figures/<profile>/RESULTS.md"),
                       ("atlas", "write figures/<profile>/atlas.html")):
        sub.add_parser(name, help=what).add_argument("--profile", default=os.environ.get("PROFILE", "tiny"))
    sd = sub.add_parser("seeds", help="write figures/<profile>/SEEDS.md: the spread over seeds")
    sd.add_argument("--profile", default=os.environ.get("PROFILE", "tiny"))
    sd.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seed offsets (0 = the profile itself)")
    cp = sub.add_parser("compare", help="write figures/COMPARISON.md: the paper and the profiles side by side")
    cp.add_argument("--profiles", nargs="+", default=["tiny", "smol"])
    sub.add_parser("steps", help="print the step table")
    args = ap.parse_args(argv)
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
        elif args.command == "report":
            from gatoms.report.markdown import main as report_main

            return report_main(["--profile", args.profile])
        elif args.command == "seeds":
            from gatoms.report.seeds import main as seeds_main

            return seeds_main(["--profile", args.profile, "--seeds", *map(str, args.seeds)])
        elif args.command == "compare":
            from gatoms.report.compare import main as compare_main

            return compare_main(["--profiles", *args.profiles])
        elif args.command == "atlas":
            from gatoms.report.atlas import main as atlas_main

            return atlas_main(["--profile", args.profile])
        else:
            for s in steps.TABLE:
                print(f"{s.name:<13} make {s.target:<10} sections {', '.join(s.sections):<22} "
                      f"upstream {', '.join(s.upstream) or '—':<14} {s.paper}")
    except config.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
