"""Print the settings reference (docs/configuration.md), .env.example, or resolved settings for shell scripts.

Lives beside the declarations rather than in cockatoo_ml/settings.py, so the mechanism never imports the registry.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from cockatoo_ml.errors import CockatooError, ConfigError
from cockatoo_ml.registry.stages import STAGES
from cockatoo_ml.settings import env_example, format_value, from_env, load_env_file, markdown


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cockatoo_ml.registry", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--markdown", action="store_true", help="Print docs/configuration.md.")
    group.add_argument("--env-example", action="store_true", help="Print .env.example.")
    group.add_argument(
        "--get",
        nargs="+",
        metavar=("STAGE", "FIELD"),
        help="Print the resolved value of each FIELD of STAGE, one a line (.env included).",
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(STAGES), end="")
    elif args.env_example:
        print(env_example(STAGES), end="")
    else:
        stages = {stage.key: stage for stage in STAGES}
        key, *names = args.get
        if key not in stages:
            raise ConfigError(f"unknown stage {key!r}; stages: {', '.join(stages)}")
        load_env_file()
        resolved = {}
        for cls in stages[key].classes:
            obj: Any = from_env(cls)
            resolved.update({f.name: getattr(obj, f.name) for f in dataclasses.fields(cls)})
        for name in names:
            if name not in resolved:
                raise ConfigError(f"stage {key} has no setting {name!r}; settings: {', '.join(resolved)}")
            print(format_value(resolved[name]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CockatooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
