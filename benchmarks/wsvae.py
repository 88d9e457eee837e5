"""WSVAE against its baselines at an equal budget: perplexity, KL, active units.

Six models, the same LSTM sizes, data, optimizer, epochs and seed:

- ``wsvae``: wake (ELBO) and sleep (fit q to dreams) steps alternated (wsvae.4, wsvae.5);
- ``wsvae-soft``: the same with soft dreams (expected embeddings, wsvae.6), whose
  loss also trains the decoder;
- ``vae-lm``: the same VAE without the sleep step (``sleep=false``), the plain
  Bowman-style VAE language model;
- ``wsvae+anneal+dropout`` and ``vae-lm+anneal+dropout``: both with the usual
  remedies against posterior collapse (KL annealing over the first ``anneal`` steps,
  word dropout 0.5), so that the decoder has a reason to use z;
- ``lstm-lm``: the decoder alone (``condition_on_z=false``: it sees z = 0), an LSTM
  language model with the same parameters, whose likelihood is exact.

Each model is scored on the first ``--eval-points`` test sequences: per-token NLL
and perplexity (wsvae.7; the IS bound with ``--particles`` samples, ``<eos>``
counted; exact for the LM), the KL of q to the prior and the active units (latent
dimensions whose posterior mean varies across data with variance > 0.01). The
models train round-robin, one epoch each in turn, so load from elsewhere on the
machine hits them alike. The script is not part of CI.

    python benchmarks/wsvae.py                                   # words, the default budget
    python benchmarks/wsvae.py --dataset glosses --epochs 10     # sentences
    python benchmarks/wsvae.py --epochs 1 --limit-train 500      # smoke run

It writes ``benchmarks/results/wsvae.json`` (or ``--out``) and prints the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from zoo import registry
from zoo.config import TrainOptions, override
from zoo.run import make_trainer

RESULTS = Path(__file__).parent / "results"
METRICS = ("test_perplexity", "test_token_nll", "test_kl", "active_units")


WORD_DROPOUT = "0.5"


def contenders(anneal_steps: int) -> dict[str, dict]:
    remedies = {"kl_anneal_steps": str(anneal_steps), "word_dropout": WORD_DROPOUT}
    return {
        "wsvae": {},
        "wsvae-soft": {"sleep_mode": "soft"},
        "vae-lm": {"sleep": "false"},
        "wsvae+anneal+dropout": remedies,
        "vae-lm+anneal+dropout": {"sleep": "false", **remedies},
        "lstm-lm": {"sleep": "false", "condition_on_z": "false"},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="words")
    parser.add_argument("--backend", default="pyro")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--limit-train", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rnn-size", type=int, default=128)
    parser.add_argument("--z-dim", type=int, default=16)
    parser.add_argument("--eval-points", type=int, default=1000)
    parser.add_argument("--particles", type=int, default=100)
    parser.add_argument("--anneal", type=int, default=None, help="KL warm-up steps (default: half the training steps)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    options = TrainOptions(
        backend=args.backend, dataset=args.dataset, binarize="none", epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, limit_train=args.limit_train,
    )
    base = {"rnn_size": str(args.rnn_size), "z_dim": str(args.z_dim),
            "eval_particles": str(args.particles), "eval_limit": str(args.eval_points)}
    steps = (args.limit_train // args.batch_size) * args.epochs if args.limit_train else None
    anneal = args.anneal if args.anneal is not None else max(1, (steps or 10_000) // 2)
    trainers, seconds = {}, {}
    for label, settings in contenders(anneal).items():
        config = override(registry.default_config("wsvae"), {**base, **settings})
        trainers[label] = make_trainer("wsvae", config, options)
        seconds[label] = []
    for epoch in range(args.epochs):
        for label, trainer in trainers.items():
            started = time.perf_counter()
            loss = trainer.run_epoch(epoch)
            seconds[label].append(time.perf_counter() - started)
            print(f"epoch {epoch + 1}/{args.epochs}  {label:<22} loss {loss:8.3f}  ({seconds[label][-1]:.1f} s)", flush=True)

    rows = {}
    for label, trainer in trainers.items():
        metrics = trainer.extra_metrics()
        rows[label] = {
            **{key: metrics[key] for key in METRICS},
            "seconds_per_epoch": statistics.median(seconds[label][1:] or seconds[label]),
            "samples": metrics["samples"],
            "settings": contenders(anneal)[label],
        }
    record = {
        "benchmark": "wsvae",
        "command": "python benchmarks/wsvae.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": vars(args),
        "results": rows,
    }
    out = Path(args.out) if args.out else RESULTS / "wsvae.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")

    print(f"\n{args.dataset}, {args.backend}, {args.epochs} epochs of {args.limit_train} sequences, seed {args.seed}")
    print(f"{'model':<22} {'perplexity':>10} {'nll/token':>10} {'KL':>7} {'active':>6} {'s/epoch':>8}")
    for label, row in rows.items():
        print(f"{label:<22} {row['test_perplexity']:>10.3f} {row['test_token_nll']:>10.4f} {row['test_kl']:>7.3f} "
              f"{row['active_units']:>6d} {row['seconds_per_epoch']:>8.1f}")
    for label, row in rows.items():
        print(f"  {label} samples: {' '.join(row['samples'])}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
