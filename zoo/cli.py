"""The ``vaezoo`` command: ``list``, ``train``, ``evaluate``.

Errors the user can fix print one line and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from zoo import registry
from zoo.config import ConfigError, TrainOptions, override
from zoo.data import DATASETS, DataError


def _user_errors() -> tuple[type[BaseException], ...]:
    from zoo.run import RunError

    errors: list[type[BaseException]] = [
        registry.UnknownVariantError,
        registry.UnknownBackendError,
        ConfigError,
        DataError,
        RunError,
    ]
    if "zoo.reproduce" in sys.modules:
        errors.append(sys.modules["zoo.reproduce"].ReproduceError)
    if "zoo.pyro_backend.trainer" in sys.modules:
        errors.append(sys.modules["zoo.pyro_backend.trainer"].TrainingError)
    if "zoo.numpyro_backend.trainer" in sys.modules:
        errors.append(sys.modules["zoo.numpyro_backend.trainer"].TrainingError)
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


def cmd_train(args) -> int:
    from zoo.run import train

    if args.devices < 1:
        raise ConfigError(f"--devices must be at least 1, got {args.devices}")
    if args.backend == "pyro" and args.devices > 1:
        from zoo import distributed

        if distributed.launched_world_size() == 1:
            # One process per device: the same command again under torchrun.
            return distributed.launch(args.argv, args.devices, args.batch_size, args.device)

    config = registry.default_config(args.variant)
    settings = _parse_settings(args.set)
    for flag, field in (("z_dim", "z_dim"), ("likelihood", "likelihood"), ("k", "k")):
        value = getattr(args, flag)
        if value is not None:
            settings[field] = str(value) if field != "likelihood" else json.dumps(value)
    config = override(config, settings)
    extra = {}
    if args.labels is not None:
        extra["labels"] = args.labels
    if args.normal_class is not None:
        extra["normal_class"] = args.normal_class
    options = TrainOptions(
        backend=args.backend,
        dataset=args.dataset,
        data_dir=args.data_dir,
        binarize=args.binarize,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        limit_train=args.limit_train,
        limit_test=args.limit_test,
        devices=args.devices,
        extra=extra,
    )
    out = Path(args.out or f"runs/{args.variant}-{args.backend}-{args.dataset}")
    if args.backend == "pyro" and "WORLD_SIZE" in os.environ:
        from zoo import distributed

        summary = distributed.train_replica(train, args.variant, config, options, out, args.resume, not args.quiet)
        if summary is None:  # not rank 0: rank 0 reports
            return 0
    else:
        summary = train(args.variant, config, options, out, resume=args.resume, progress=not args.quiet)
    print(f"trained {summary['variant']} ({summary['backend']}) for {summary['epochs']} epochs on {summary['dataset']}")
    print(f"  final train loss   {summary['train_loss']:.4f} nats/datapoint")
    print(f"  test ELBO (500)    {summary['test_elbo_500']:.4f} nats/datapoint")
    print(f"  metrics            {out / 'metrics.json'}  (per epoch: {out / 'metrics.jsonl'})")
    print(f"  samples            {out / 'samples.png'}")
    print(f"  reconstructions    {out / 'reconstructions.png'}")
    print(f"  checkpoint         {out / 'checkpoint.ckpt'}  (continue with --resume --out {out})")
    if args.evaluate:
        return _evaluate(out, args.eval_k, args.limit_test, None)
    return 0


def _evaluate(run_dir: Path, k: int, limit, device, proposal: str = "guide") -> int:
    from zoo.evaluate import evaluate, format_table

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
                      out=out, workdir=args.keep_runs, log=log, data_dir=args.data_dir)
    print(format_table(entry))
    print(f"  written to {out / RESULTS_FILE}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaezoo", description="Train and evaluate the VAE zoo.")
    sub = parser.add_subparsers(dest="command", required=True)

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
    train.add_argument(
        "--devices", type=int, default=1,
        help="data-parallel over N devices: N processes under torchrun (Pyro), an N-device mesh (NumPyro)",
    )
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
    train.add_argument("--evaluate", action="store_true", help="evaluate after training")
    train.add_argument("--eval-k", type=int, default=1000, help="importance samples for --evaluate")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
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
    reproduce.add_argument("--data-dir", default=None, help="folder with the IDX files (fashion-mnist)")
    reproduce.add_argument("--quiet", action="store_true", help="no progress lines")
    reproduce.set_defaults(run=cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # --devices relaunches the command
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("\nvaezoo: interrupted; the last finished epoch is checkpointed (continue with --resume)", file=sys.stderr)
        return 130
    except _user_errors() as error:
        message = str(error)
        if isinstance(error, KeyError) and not isinstance(error, registry.UnknownVariantError):
            message = repr(error)
        print(f"vaezoo: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
