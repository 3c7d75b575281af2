"""The ``neuralbody`` command: one sub-command a module in this package.

Each sub-command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Every sub-command also takes ``--no-progress`` (added here, so a module
must not declare it): ``run`` then executes with progress bars off
(:func:`neuralbody.io.progress.progress_setting`), in that command and in any it calls.

Errors of the user's input (:class:`~neuralbody.io.errors.InputError` and the ValueError /
FileNotFoundError of argument checks) and of the system (other OSError: permissions, a full
disk) end as one line ``error: ...`` on stderr and exit status 1; ``--verbose`` adds the
traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

COMMANDS = {
    "demo": "neuralbody.cli.demo",
    "synth": "neuralbody.cli.synth",
    "synth-corpus": "neuralbody.cli.synth_corpus",
    "info": "neuralbody.cli.info",
    "train": "neuralbody.cli.train",
    "train-recon": "neuralbody.cli.train_recon",
    "reconstruct": "neuralbody.cli.reconstruct",
    "train-keypoint": "neuralbody.cli.train_keypoint",
    "render-keypoint": "neuralbody.cli.render_keypoint",
    "finetune-keypoint": "neuralbody.cli.finetune_keypoint",
    "render": "neuralbody.cli.render",
    "eval": "neuralbody.cli.evaluate",
    "mesh": "neuralbody.cli.mesh",
    "fit": "neuralbody.cli.fit",
    "import": "neuralbody.cli.import_capture",
    "detect": "neuralbody.cli.detect",
    "refine-cameras": "neuralbody.cli.refine_cameras",
    "calibrate-colour": "neuralbody.cli.calibrate_colour",
    "check": "neuralbody.cli.check",
    "snarf": "neuralbody.cli.snarf",
    "snarf-eval": "neuralbody.cli.snarf_eval",
    "animate": "neuralbody.cli.animate",
    "export": "neuralbody.cli.export",
    "train-gen": "neuralbody.cli.train_gen",
    "generate": "neuralbody.cli.generate",
    "fit-scan": "neuralbody.cli.fit_scan",
    "synth-head": "neuralbody.cli.synth_head",
    "train-head": "neuralbody.cli.train_head",
    "animate-head": "neuralbody.cli.animate_head",
    "track-head": "neuralbody.cli.track_head",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuralbody",
        description="Photorealistic, animatable 3D humans from a few synchronised cameras.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command_parser)
        command_parser.add_argument("--no-progress", action="store_true", help="no progress bars")
        command_parser.set_defaults(_module=module)
    return parser


def default_cpu_threads() -> int:
    """Torch CPU threads: all cores but one (at least one).

    On a 2-core machine torch's default of 2 threads collapses 10-100x as soon as anything
    else runs, while 1 thread costs little when the machine is idle (measured on the demo).
    ``NEURALBODY_THREADS`` overrides it.
    """
    override = os.environ.get("NEURALBODY_THREADS")
    if override:
        return max(1, int(override))
    return max(1, (os.cpu_count() or 2) - 1)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s",
    )
    for noisy in ("anny", "warp", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command is None:
        parser.print_help()
        return 2
    import torch

    from neuralbody.io.progress import progress_setting

    torch.set_num_threads(default_cpu_threads())
    try:
        with progress_setting(not args.no_progress):
            return int(args._module.run(args) or 0)
    except (ValueError, OSError) as error:  # InputError is a ValueError; FileNotFoundError an OSError
        from neuralbody.io.errors import one_line

        logger = logging.getLogger("neuralbody")
        logger.debug("traceback of the error below", exc_info=True)
        logger.error("error: %s", one_line(error) or type(error).__name__)
        return 1
    except KeyboardInterrupt:
        logging.getLogger("neuralbody").error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
