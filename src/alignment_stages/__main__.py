"""Alignment Stages file for ensuring the package is executable
as `alignment-stages` and `python -m alignment_stages`.

`alignment-stages judge [--env ENV] INPUT.jsonl OUTPUT.jsonl` audits answers with the judge panel
of `behaviour_judges` in that environment (the panel the gate uses); every other command is
Kedro's.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project


def judge_main(argv: list[str]) -> int:
    from kedro.config import OmegaConfigLoader

    from alignment_stages.judges.audit import SameFileError, audit_file, refuse_overwriting_input
    from alignment_stages.judges.config import JudgesParams, build_judge_panel
    from alignment_stages.settings import CONFIG_LOADER_ARGS

    parser = argparse.ArgumentParser(prog="alignment-stages judge")
    parser.add_argument("--env", default="local", help="configuration environment (conf/ENV)")
    parser.add_argument("--conf-source", default="conf", help="the project's conf folder")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    if not args.input.is_file():
        parser.error(f"{args.input} is not a file")
    try:  # before the panel is built: the input must survive any mistake in the paths
        refuse_overwriting_input(args.input, args.output)
    except SameFileError as exc:
        parser.error(str(exc))
    if not (Path(args.conf_source) / args.env).is_dir() and args.env != "local":
        parser.error(f"no environment {args.env!r} under {args.conf_source}/")
    loader = OmegaConfigLoader(args.conf_source, env=args.env, **CONFIG_LOADER_ARGS)
    params = JudgesParams.model_validate(loader["parameters"]["behaviour_judges"])
    if params.reward_threshold is not None:
        parser.error(
            "behaviour_judges.reward_threshold needs the trained reward model, which only the "
            "pipeline has; drop it in a judging environment"
        )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    audit_file(build_judge_panel(params, None), args.input, args.output)  # logs the counts
    return 0


def main(*args, **kwargs) -> Any:
    if len(sys.argv) > 1 and sys.argv[1] == "judge":
        return sys.exit(judge_main(sys.argv[2:]))
    package_name = Path(__file__).parent.name
    configure_project(package_name)

    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive

    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
