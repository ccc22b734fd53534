"""`shoerecon <command> ...`: one entry point; each command lives in its own module.

A command module defines ``add_arguments(parser)`` and ``run(args) -> int | None``. Modules are
imported only when their command runs, so ``shoerecon --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("shoerecon.data.synth_cli", "generate a synthetic turntable dataset of procedural shoes"),
    "synth-photos": ("shoerecon.data.product_photos", "synthetic shop turntable photos with hidden random rigs (+ the truth apart)"),
    "import": ("shoerecon.data.importer", "folders of shop turntable photos -> a dataset with masks, report, contact sheet"),
    "calibrate": ("shoerecon.calib.cli", "the unknown turntable rig of an imported dataset, from its masks"),
    "cache": ("shoerecon.commands.cache", "decode + resize a dataset's views once into memory-mappable arrays"),
    "show-data": ("shoerecon.data.show", "contact sheet of a dataset folder (shoes x views)"),
    "template": ("shoerecon.data.template", "regenerate the template mesh in templates/"),
    "predict": ("shoerecon.commands.predict", "image(s) + checkpoint -> textured OBJ/GLB + turntable strip"),
    "eval": ("shoerecon.commands.evaluate", "evaluate a checkpoint on a dataset split (2D, 3D, invariance, mesh quality)"),
    "export-model": ("shoerecon.commands.export_model", "run folder or checkpoint -> model.safetensors (inference release)"),
    "serve": ("shoerecon.serve", "web demo (Gradio): upload a photo, get the textured 3D shoe, GLB and OBJ downloads"),
}


def build_parser(load_commands: bool = True, only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoerecon", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if load_commands and (only is None or only == name):
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        parser = build_parser(load_commands=False)
        if command is not None:
            parser.error(f"unknown command {command!r}; valid commands: {', '.join(COMMANDS)}")
        parser.print_help()
        return 0 if argv else 2
    args = build_parser(only=command).parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
