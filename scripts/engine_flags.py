"""Check inference/engines.py against an engine's real argument parser (run with a Python that has the engine).

    VLLM_TARGET_DEVICE=cpu python scripts/engine_flags.py vllm      # vLLM installed
    python scripts/engine_flags.py sglang                           # SGLang installed

Checks that the generated command line parses, that every option string of the parser whose setting a managed flag
sets is refused (aliases, underscore spellings, `=` forms, abbreviations) and that no other option is. Exit 1 on a
mismatch. Run it from a directory that holds no module named like the standard library (torch imports `timeit`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from inference.engines import ENGINES, EngineInputs, managed_flag


def parser(engine: str) -> argparse.ArgumentParser:
    if engine == "vllm":
        import vllm.entrypoints.cli.serve as serve
        from vllm.utils.argparse_utils import FlexibleArgumentParser

        top = FlexibleArgumentParser()
        sub = top.add_subparsers(dest="subparser")
        for cmd in serve.cmd_init():
            cmd.subparser_init(sub)
        return sub.choices["serve"]
    from sglang.srt.server_args import ServerArgs

    p = argparse.ArgumentParser()
    ServerArgs.add_cli_args(p)
    return p


def main(engine: str) -> int:
    e, p = ENGINES[engine], parser(engine)
    args = e.build_args(EngineInputs("/models/m/rev", "m", 2, e.port, 8192, 32))
    parsed = vars(p.parse_args(args))
    managed_dests = {a.dest for a in p._actions if set(a.option_strings) & set(e.managed_flags)}
    if engine == "vllm":
        managed_dests |= {"model_tag"}
    errors = []
    for action in p._actions:
        for option in action.option_strings:
            under = "--" + option[2:].replace("-", "_") if option.startswith("--") else option
            spellings = {option, under, option + "=1"}
            for spelling in spellings:
                refused = managed_flag(e, spelling) is not None
                if refused != (action.dest in managed_dests):
                    errors.append(f"{spelling} ({action.dest}): refused={refused}")
    # abbreviations the parser resolves to a managed setting are refused too
    for action in p._actions:
        if action.dest in managed_dests:
            for option in action.option_strings:
                for cut in range(4, len(option)):
                    prefix = option[:cut]
                    matches = {a.dest for a in p._actions for o in a.option_strings if o.startswith(prefix)}
                    if p.allow_abbrev and matches == {action.dest} and managed_flag(e, prefix) is None:
                        errors.append(f"abbreviation {prefix} of {option} is not refused")
    print(f"{engine}: generated args parse to", {k: parsed[k] for k in sorted(managed_dests) if k in parsed})
    print("\n".join(errors) or f"{engine}: every managed spelling refused, every other option allowed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
