"""`python -m alignment_stages.demo [output_dir] [--seed N]`: rewrite the demo preference files."""

import argparse
import logging
from pathlib import Path

from alignment_stages.demo.generate import write_demo_files

logger = logging.getLogger("alignment_stages.demo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output_dir", nargs="?", default="data/01_raw/preferences", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    counts = write_demo_files(args.output_dir, args.seed)
    for name, n in counts.items():
        logger.info("wrote %6d records to %s", n, args.output_dir / name)


if __name__ == "__main__":
    main()
