"""`latentween eval`: every interpolation scheme on seeded toy-world pairs, scored analytically."""
from __future__ import annotations

import argparse
import sys
import typing

from latentween.cli.options import flag
from latentween.errors import InputError
from latentween.toyworld.defaults import SHARED_MORPH, SHARED_RUNTIME, WORLD_NAMES, shared_default, shared_field

# What a shared setting means differently here; its help is otherwise the job's (settings.py)
_NOTES = {"model": "; eval's default is the world's shipped model, toy or toy-shapes",
          "scheduler": "; eval compares named samplers, so not auto", "guidance": "; eval's prompt is empty",
          "seed": "; eval's is fixed, so that runs compare"}
_CHECKED_IN_RUN = {"scheduler"}  # its Literal holds auto, which eval refuses in its own words


def register(sub) -> None:
    parser = sub.add_parser("eval", help="compare the interpolation schemes in the toy world",
                            description="Run every scheme of docs/method.md's table (and the aligned variant) on the same "
                                        "seeded toy-world pairs; write DIR/report.md, report.json, grid.png and worst.png.")
    parser.add_argument("--world", choices=WORLD_NAMES, default="disks",
                        help="disks: one disk that moves and changes colour; shapes: up to two disks, squares and "
                             "triangles that move, turn and scale (default: disks)")
    parser.add_argument("--pairs", type=int, default=50, help="keyframe pairs (default: 50)")
    parser.add_argument("--schemes", default="all", help="comma-separated schemes, or all")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--samplers", default="", metavar="NAME:STEPS,...",
                        help="also run ours-aligned with these samplers, e.g. ddim:200,dpmpp-2m:25,euler:10: "
                             "a quality-vs-cost table and samplers.png")
    parser.add_argument("--worst", type=int, default=6, metavar="K",
                        help="worst.png shows the K pairs with the fewest true in-betweens of ours-aligned, or of the "
                             "first scheme when it does not run (default: 6)")
    parser.add_argument("--noise-sweep", default="", metavar="LO:HI,...",
                        help="extra noise ranges to run ours and ours-aligned at, e.g. 0.2:0.4,0.45:0.7")
    shared = parser.add_argument_group("job settings (as in morph; eval's own defaults)")
    for name in SHARED_MORPH + SHARED_RUNTIME:
        _add_shared(shared, name)
    parser.set_defaults(run=run)


def _add_shared(group, name: str) -> None:
    """A flag of a setting eval shares with a morph job: the job's meaning and type, eval's default."""
    field, default = shared_field(name), shared_default(name)
    kwargs = {"type": str if default is None else type(default), "default": default}
    if typing.get_origin(field.annotation) is typing.Literal and name not in _CHECKED_IN_RUN:
        kwargs = {"default": default, "choices": list(typing.get_args(field.annotation))}
    shown = "" if default is None else f" (default: {default})"
    help_text = f"{field.description}{_NOTES.get(name, '')}{shown}"
    group.add_argument(flag(name), dest=name, help=help_text.replace("%", "%%"), **kwargs)


def run(args: argparse.Namespace) -> int:
    from latentween.toyworld.evaluate import SCHEMES, EvalConfig, evaluate

    schemes = SCHEMES if args.schemes == "all" else tuple(s.strip() for s in args.schemes.split(","))
    unknown = [s for s in schemes if s not in SCHEMES]
    if unknown:
        raise InputError(f"--schemes: unknown {', '.join(unknown)} (choose from {', '.join(SCHEMES)})")
    if args.pairs < 1 or args.frames < 3 or args.worst < 1:
        raise InputError("--pairs and --worst must be >= 1 and --frames >= 3")
    try:
        sweep = [tuple(float(v) for v in part.split(":")) for part in args.noise_sweep.split(",") if part]
        assert all(len(p) == 2 and 0 <= p[0] <= p[1] <= 1 for p in sweep)
    except (ValueError, AssertionError) as exc:
        raise InputError(f"--noise-sweep must look like 0.2:0.4,0.45:0.7, got {args.noise_sweep!r}") from exc
    from latentween.schedulers import SCHEDULERS

    samplers = []
    for part in filter(None, (p.strip() for p in args.samplers.split(","))):
        name, _, steps = part.partition(":")
        if name not in SCHEDULERS or not steps.isdigit() or int(steps) < 1:
            raise InputError(f"--samplers: {part!r} is not NAME:STEPS with NAME in {', '.join(SCHEDULERS)}")
        samplers.append((name, int(steps)))
    if args.scheduler not in SCHEDULERS:
        raise InputError(f"--scheduler: unknown {args.scheduler!r} (choose from {', '.join(SCHEDULERS)})")
    config = EvalConfig(world=args.world, model=args.model, pairs=args.pairs, frames=args.frames, schemes=schemes, steps=args.steps,
                        guidance=args.guidance, seed=args.seed, min_noise=args.min_noise, max_noise=args.max_noise,
                        noise_sweep=sweep, samplers=samplers, scheduler=args.scheduler, dtype=args.dtype,
                        worst_pairs=args.worst)

    def progress(name, done, total):
        if sys.stderr.isatty():
            print(f"\r{name}: {done}/{total} pairs", end="" if done < total else "\n", file=sys.stderr)
        elif done == total or done % max(1, total // 10) == 0:  # a log file gets about ten lines per scheme
            print(f"{name}: {done}/{total} pairs", file=sys.stderr, flush=True)

    report = evaluate(config, args.out, progress=progress)
    for name, s in report["schemes"].items():
        print(f"{name:22s} on-manifold {s['on_manifold']:.2f}  true in-between {s['true_inbetween']:.2f}", file=sys.stderr)
    print(f"wrote {args.out}/report.md, report.json, grid.png and worst.png", file=sys.stderr)
    return 0
