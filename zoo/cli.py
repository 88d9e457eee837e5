"""The ``vaezoo`` command: ``list``, ``train``, ``evaluate``.

Errors the user can fix print one line and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
from pathlib import Path

from zoo import registry
from zoo.config import ConfigError, TrainOptions, override, parse_assignments
from zoo.data import DATASETS, TEXT_DATASETS, DataError


def _user_errors() -> tuple[type[BaseException], ...]:
    from zoo.run import RunError

    errors: list[type[BaseException]] = [
        registry.UnknownVariantError,
        registry.UnknownBackendError,
        ConfigError,
        DataError,
        RunError,
    ]
    if "zoo.pyro_backend.trainer" in sys.modules:
        errors.append(sys.modules["zoo.pyro_backend.trainer"].TrainingError)
    if "zoo.numpyro_backend.trainer" in sys.modules:
        errors.append(sys.modules["zoo.numpyro_backend.trainer"].TrainingError)
    if "zoo.reproduce" in sys.modules:
        errors.append(sys.modules["zoo.reproduce"].ReproduceError)
    if "zoo.distributed" in sys.modules:
        errors.append(sys.modules["zoo.distributed"].DistributedError)
    return tuple(errors)


def _parse_settings(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects name=value, got {pair!r}")
        name, value = pair.split("=", 1)
        settings[name.strip()] = value
    return settings


def cmd_list(args) -> int:
    print(f"{'variant':<10} {'objective':<28} paper")
    for name in registry.names():
        card = registry.card(name)
        print(f"{name:<10} {card.objective_kind:<28} {card.paper.authors.split(',')[0]} et al. {card.paper.year}: {card.paper.title}")
    return 0


# Train options and the config fields their flags set, for telling which ones a
# --resume command gives explicitly.
OPTION_FLAGS = ("backend", "dataset", "data_dir", "binarize", "epochs", "batch_size", "lr", "seed", "device",
                "limit_train", "limit_test", "devices")
CONFIG_FLAGS = {"z_dim": "z_dim", "likelihood": "likelihood", "k": "k"}
EXTRA_FLAGS = ("labels", "normal_class")


def _at_least_one(flag: str, value) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{flag} must be at least 1, got {value}")


def _configured(config, settings: dict, flags: dict):
    """``config`` with the --set values and the flags' fields, validated once."""
    from_set = parse_assignments(config, settings)  # a --set value of the wrong type is named as such
    from_flags = parse_assignments(config, flags)
    for field in sorted(set(from_set) & set(from_flags)):
        if from_set[field] != from_flags[field]:
            flag = "--" + field.replace("_", "-")
            raise ConfigError(f"{field} is given twice, differently ({flag} {flags[field]} and --set {field}={settings[field]}); "
                              "give it once")
    return override(config, {**settings, **flags})


def cmd_train(args) -> int:
    from zoo.run import load_run_file, train

    _at_least_one("--eval-k", args.eval_k)
    out = Path(args.out or f"runs/{args.variant}-{args.backend}-{args.dataset}")
    given = getattr(args, "given", None)
    # --set values and the dedicated flags (--z-dim...) are applied together and the
    # config validated once, so a setting that depends on another (a flow's width on
    # z_dim) is judged against the value the command gives; a field may be given one
    # way only.
    settings = _parse_settings(args.set)
    flags = {}
    for flag, field in CONFIG_FLAGS.items():
        value = getattr(args, flag)
        if value is not None and (given is None or flag in given):
            flags[field] = str(value) if field != "likelihood" else json.dumps(value)
    if args.resume and (out / "checkpoint.ckpt").exists():
        # The run's record fills in what the command leaves out; what it gives
        # explicitly must agree with the record (zoo.run checks), except --epochs.
        registry.card(args.variant)  # an unknown variant is named as such, not as a difference
        run_variant, config, options = load_run_file(out)
        if args.variant != run_variant:  # refused by zoo.run, which names both variants
            config = registry.default_config(args.variant)
        config = _configured(config, settings, flags)
        explicit = {name: getattr(args, name) for name in OPTION_FLAGS if given is None or name in given}
        extra = dict(options.extra)
        extra.update({name: getattr(args, name) for name in EXTRA_FLAGS if name in (given or ()) and getattr(args, name) is not None})
        options = dataclasses.replace(options, **explicit, extra=extra)
    else:
        config = _configured(registry.default_config(args.variant), settings, flags)
        extra = {name: getattr(args, name) for name in EXTRA_FLAGS if getattr(args, name) is not None}
        options = TrainOptions(**{name: getattr(args, name) for name in OPTION_FLAGS}, extra=extra)
    # Every check zoo.run.train makes before writing, made here too, so that a
    # command launched on several devices is refused once, before the launch.
    options.validate()
    config.validate()
    if args.backend == "pyro" and args.devices > 1:
        from zoo import distributed

        if distributed.launched_world_size() == 1:
            # One process per device: the same command again under torchrun.
            return distributed.launch(args.argv, args.devices, args.batch_size, args.device)
    if args.backend == "pyro" and "WORLD_SIZE" in os.environ:
        from zoo import distributed

        if args.overwrite and int(os.environ.get(distributed.ENV_RANK, "0")) == 0:
            from zoo.run import RunLock, check_out_dir, remove_outputs

            check_out_dir(out)
            with RunLock(out):
                remove_outputs(out)
        summary = distributed.train_replica(train, args.variant, config, options, out, args.resume, not args.quiet)
        if summary is None:  # not rank 0: rank 0 reports
            return 0
    else:
        summary = train(
            args.variant, config, options, out, resume=args.resume, progress=not args.quiet, overwrite=args.overwrite
        )
    print(f"trained {summary['variant']} ({summary['backend']}) for {summary['epochs']} epochs on {summary['dataset']}")
    print(f"  final train loss   {summary['train_loss']:.4f} nats/datapoint")
    print(f"  test ELBO (500)    {summary['test_elbo_500']:.4f} nats/datapoint")
    print(f"  metrics            {out / 'metrics.json'}  (per epoch: {out / 'metrics.jsonl'})")
    pictures = "txt" if summary["dataset"] in TEXT_DATASETS else "png"  # text runs write decoded strings
    print(f"  samples            {out / ('samples.' + pictures)}")
    print(f"  reconstructions    {out / ('reconstructions.' + pictures)}")
    print(f"  checkpoint         {out / 'checkpoint.ckpt'}  (continue with --resume --out {out})")
    if args.evaluate:
        return _evaluate(out, args.eval_k, args.limit_test, None)
    return 0


def _evaluate(run_dir: Path, k: int, limit, device, proposal: str = "guide") -> int:
    from zoo.evaluate import evaluate, format_table

    _at_least_one("--k", k)
    _at_least_one("--limit", limit)
    if device is not None:
        TrainOptions(device=device).validate()

    results = evaluate(run_dir, k=k, limit=limit, device=device, proposal=proposal)
    print(format_table(results))
    print(f"  written to {Path(run_dir) / 'eval.json'}")
    return 0


def cmd_evaluate(args) -> int:
    return _evaluate(Path(args.run_dir), args.k, args.limit, args.device, args.proposal)


def cmd_reproduce(args) -> int:
    """Run the variants' claims (zoo.reproduce) and print the verdicts."""
    from zoo.reproduce import DEFAULT_OUT, RESULTS_FILE, format_table, reproduce, select_variants

    out = Path(args.out) if args.out else DEFAULT_OUT
    log = (lambda *a, **k: None) if args.quiet else (lambda message: print(message, file=sys.stderr))
    entry = reproduce(select_variants(args.variant), budget=args.budget, backend=args.backend, seeds=args.seeds,
                      out=out, workdir=args.keep_runs, log=log, data_dir=args.data_dir, only=args.claim)
    print(format_table(entry))
    print(f"  written to {out / RESULTS_FILE}")
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is the same single ``vaezoo: error:`` line (exit
    status 2) as every other mistake, with a pointer to ``--help``."""

    def error(self, message: str):
        self.exit(2, f"vaezoo: error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="vaezoo", description="Train and evaluate the VAE zoo.")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.subcommands = sub.choices

    sub.add_parser("list", help="list the registered variants").set_defaults(run=cmd_list)

    train = sub.add_parser("train", help="train a variant")
    train.add_argument("variant", help="one of: " + ", ".join(registry.names()))
    train.add_argument("--backend", default="pyro", help="pyro (default) or numpyro")
    train.add_argument("--dataset", default="digits", help="one of: " + ", ".join(DATASETS))
    train.add_argument("--data-dir", default=None, help="folder with the IDX files (mnist, fashion-mnist)")
    train.add_argument("--binarize", default="dynamic", help="none, dynamic (default) or fixed")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu", help="cpu or cuda (Pyro moves everything; JAX uses its default backend)")
    train.add_argument("--k", type=int, default=None, help="importance samples (IWAE)")
    train.add_argument("--z-dim", type=int, default=None)
    train.add_argument("--likelihood", default=None, help="bernoulli or gaussian")
    train.add_argument("--labels", type=int, default=None, help="labelled training examples (semi-supervised variants)")
    train.add_argument("--normal-class", type=int, default=None, help="one-class training on this class (anomaly detection)")
    train.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override any config field")
    train.add_argument("--limit-train", type=int, default=None)
    train.add_argument("--limit-test", type=int, default=None)
    train.add_argument("--out", default=None, help="run directory (default runs/VARIANT-BACKEND-DATASET)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace the run in --out (its files are deleted)")
    train.add_argument("--evaluate", action="store_true", help="evaluate after training")
    train.add_argument("--eval-k", type=int, default=1000, help="importance samples for --evaluate")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--devices", type=int, default=1,
        help="data-parallel over N devices: N processes under torchrun (Pyro), an N-device mesh (NumPyro)",
    )
    train.set_defaults(run=cmd_train)

    evaluate = sub.add_parser("evaluate", help="evaluate a trained run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--k", type=int, default=5000, help="importance samples per test datapoint")
    evaluate.add_argument("--limit", type=int, default=None, help="evaluate the first N test datapoints")
    evaluate.add_argument("--device", default=None)
    evaluate.add_argument("--proposal", default="guide", choices=("guide", "defensive", "prior"),
                          help="importance-sampling proposal: the guide (default), the defensive mixture "
                          "1/3 guide + 1/3 N(mu, 0.3^2) + 1/3 prior, or the prior N(0, I)")
    evaluate.set_defaults(run=cmd_evaluate)

    reproduce = sub.add_parser("reproduce", help="check the variants' paper claims (zoo/reproduce.py)")
    reproduce.add_argument("variant", help="all, or one of: " + ", ".join(registry.names()))
    reproduce.add_argument("--budget", default="quick", choices=("quick", "full"),
                           help="quick: digits, seconds per variant (default); full: the Fashion-MNIST protocol")
    reproduce.add_argument("--backend", default="pyro", choices=registry.BACKENDS)
    reproduce.add_argument("--seeds", type=int, default=None, help="seeds per contender (default: the budget's)")
    reproduce.add_argument("--out", default=None, help="folder of claims.json (default benchmarks/results)")
    reproduce.add_argument("--keep-runs", default=None, metavar="DIR", help="keep the run folders here")
    reproduce.add_argument("--claim", action="append", default=None, metavar="ID", help="only this claim (repeatable)")
    reproduce.add_argument("--data-dir", default=None, help="folder with the IDX files (fashion-mnist)")
    reproduce.add_argument("--quiet", action="store_true", help="no progress lines")
    reproduce.set_defaults(run=cmd_reproduce)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch scheduler's stop): handled like Ctrl-C."""


def _terminate(signum, frame):
    raise Terminated


def _given_train_flags(parser, argv) -> set[str]:
    """The destinations of the ``train`` options the command line sets explicitly
    (defaults suppressed, then parsed again)."""
    train = parser.subcommands["train"]
    saved = [(action, action.default) for action in train._actions]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        return set(vars(parser.parse_args(argv)))
    finally:
        for action, default in saved:
            action.default = default


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
        args.argv = argv  # --devices relaunches the command
        if args.command == "train":
            args.given = _given_train_flags(parser, argv)
    except SystemExit as stop:  # --help, or a malformed argument (one line printed)
        return stop.code if isinstance(stop.code, int) else 2
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except KeyboardInterrupt as stop:
        what = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        after = "the last finished epoch is checkpointed (continue with --resume)" if args.command == "train" else "nothing was written"
        print(f"\nvaezoo: {what}; {after}", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)
    except _user_errors() as error:
        message = str(error)
        if isinstance(error, KeyError) and not isinstance(error, registry.UnknownVariantError):
            message = repr(error)
        print(f"vaezoo: error: {message}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
