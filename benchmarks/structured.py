"""The structured variants of issue 11 against the plain VAE at an equal budget.

Three tables, each trained round-robin (one epoch of each model in turn, so a burst
of load from elsewhere on the machine hits them all alike), for every seed:

``iwae2``
    The two-stochastic-layer IWAE (k=5) against the one-layer IWAE (k=5) and the
    one-layer VAE with the same first layer (Burda et al., Table 1 architecture,
    shrunk on digits): ``L_K`` on the test set (K = ``--iwae-k``, 5000 by
    default, the paper's), the test ELBO and the active units per layer.
``msvae``
    The MSVAE (stage 1 + one refiner, l1, stop-gradient) against stage 1 alone
    (``stages=1``: the same fixed-scale Gaussian VAE), on grey levels: l1 and l2
    reconstruction errors per stage on test images, and the sharpness of samples
    and reconstructions relative to real test images (mean gradient magnitude,
    Laplacian variance; zoo/sharpness.py).
``crvae``
    The channel-recurrent VAE (T = 4 blocks) against a VAE with a latent of equal
    size and the same hidden width: test ELBO, ``L_1000`` and the per-step KL.

Seconds per epoch are medians over the epochs after the first. The script is not
part of CI.

    python benchmarks/structured.py                          # digits, the committed run
    python benchmarks/structured.py --epochs 2 --seeds 1 --iwae-k 100   # smoke run

It writes ``benchmarks/results/structured.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from zoo import registry
from zoo.config import TrainOptions, override
from zoo.evaluate import importance_sampled_metrics
from zoo.run import make_trainer

from machine import machine_info  # benchmarks/machine.py, beside this script

RESULTS = Path(__file__).parent / "results"

# Shrunk architectures for 8x8 digits (the cards' defaults are the papers' MNIST sizes).
ONE_LAYER = {"hidden": [100, 100], "activation": "tanh", "z_dim": 20}
TABLES = {
    "iwae2": {
        "binarize": "dynamic",
        "models": {
            "VAE, 1 layer": ("vae", ONE_LAYER),
            "IWAE, 1 layer, k=5": ("iwae", {**ONE_LAYER, "k": 5}),
            "IWAE, 2 layers, k=5": ("iwae2", {"hidden": [100, 100], "z_dim": 40, "hidden2": [50, 50], "z2_dim": 20, "k": 5}),
        },
    },
    "msvae": {
        "binarize": "none",
        "models": {
            "VAE (stage 1 alone)": ("msvae", {"hidden": [128], "z_dim": 16, "stages": 1}),
            "MSVAE, 2 stages": ("msvae", {"hidden": [128], "z_dim": 16, "stages": 2}),
        },
    },
    "crvae": {
        "binarize": "dynamic",
        "models": {
            "VAE, z=16": ("vae", {"hidden": [128], "z_dim": 16}),
            "CRVAE, T=4, z=16": ("crvae", {"hidden": [128], "z_dim": 16, "steps": 4, "lstm_hidden": 32}),
        },
    },
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def use(trainer):
    """Pyro's param store is global and keyed by module name: empty it so that
    ``pyro.module`` registers this trainer's own parameters (see regularised.py)."""
    if trainer.backend == "pyro":
        import pyro

        pyro.clear_param_store()
    return trainer


def train_table(models: dict, options: TrainOptions) -> dict:
    """``{label: (trainer, seconds per epoch)}``, trained one epoch of each in turn."""
    trainers, seconds = {}, {}
    for label, (variant, overrides) in models.items():
        config = override(registry.default_config(variant), {k: json.dumps(v) for k, v in overrides.items()})
        trainers[label] = make_trainer(variant, config, options)
        seconds[label] = []
    for epoch in range(options.epochs):
        for label, trainer in trainers.items():
            use(trainer)
            started = time.perf_counter()
            loss = trainer.run_epoch(epoch)
            seconds[label].append(time.perf_counter() - started)
            if not np.isfinite(loss):
                raise RuntimeError(f"{label} diverged in epoch {epoch + 1}")
        if (epoch + 1) % 10 == 0 or epoch + 1 == options.epochs:
            log(f"  epoch {epoch + 1}/{options.epochs}")
    return {label: (trainers[label], statistics.median(s[1:] or s)) for label, s in seconds.items()}


def evaluate_table(name: str, args, seed: int) -> list[dict]:
    table = TABLES[name]
    options = TrainOptions(
        backend=args.backend, dataset=args.dataset, binarize=table["binarize"], epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=seed, limit_train=args.limit_train,
    )
    log(f"{name}, seed {seed}")
    rows = []
    for label, (trainer, seconds) in train_table(table["models"], options).items():
        use(trainer)
        arrays = {k: v[: args.test_points] for k, v in trainer.test_data().items()}
        k = args.iwae_k if name == "iwae2" else args.eval_k
        found = importance_sampled_metrics(trainer, arrays, k)
        row = {
            "table": name, "model": label, "variant": trainer.variant.__module__.split(".")[1], "seed": seed,
            "test_elbo": found["test_elbo"], "test_log_likelihood": found["test_log_likelihood"], "eval_k": k,
            "psis_khat_mean": found["psis_khat_mean"], "seconds_per_epoch": seconds,
        }
        row.update(trainer.extra_metrics())
        if row["variant"] == "vae" and name == "crvae":
            row["kl_total"] = vae_kl(trainer, arrays["x"])
        rows.append(row)
    return rows


def vae_kl(trainer, x) -> float:
    """Mean KL(q(z|x) || N(0, I)) of a VAE's encoder on ``x`` (both backends)."""
    if trainer.backend == "pyro":
        import torch

        with torch.no_grad():
            loc, scale = (a.double().cpu().numpy() for a in trainer.variant.encoder(torch.as_tensor(x)))
    else:
        loc, scale = (np.asarray(a, np.float64) for a in trainer.variant.apply(trainer.params, "encoder", trainer.variant.encoder, x))
    return float(np.mean(np.sum(-np.log(scale) + (scale**2 + loc**2) / 2 - 0.5, axis=-1)))


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of every number, per (table, model)."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["table"], row["model"]), []).append(row)
    summary = []
    for (table, model), group in groups.items():
        entry = {"table": table, "model": model, "seeds": len(group)}
        for key, value in group[0].items():
            if isinstance(value, float) and key != "seed":
                values = [r[key] for r in group if r.get(key) is not None]
                entry[key] = float(np.mean(values))
                entry[key + "_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            elif isinstance(value, int) and key.startswith("active_units"):
                entry[key] = float(np.mean([r[key] for r in group]))
        summary.append(entry)
    return summary


def format_rows(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    if not rows:
        return "(not run)"
    widths = [max(len(header), 10) for _, header, _ in columns]
    widths[0] = max(widths[0], *(len(str(row[columns[0][0]])) for row in rows))
    lines = ["  ".join(f"{header:<{w}}" for (_, header, _), w in zip(columns, widths))]
    for row in rows:
        cells = []
        for (key, _, fmt), w in zip(columns, widths):
            value = row.get(key)
            shown = "-" if value is None else format(value, fmt)
            if value is not None and row.get(key + "_sd") and row["seeds"] > 1:
                shown += f"±{format(row[key + '_sd'], fmt)}"
            cells.append(f"{shown:<{w}}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def report(results: dict) -> str:
    s = results["settings"]
    summary = results["summary"]
    pick = lambda table: [r for r in summary if r["table"] == table]  # noqa: E731
    kl_steps = [(f"kl_step_{t}", f"KL_{t}", ".2f") for t in range(1, 5)]
    return "\n".join([
        f"{s['dataset']} ({s['limit_train'] or 'all'} training images), {s['backend']}, {s['epochs']} epochs, "
        f"batch {s['batch_size']}, Adam {s['lr']:g}, seeds {s['seeds']}; {s['test_points']} test images; mean±sd over seeds",
        "",
        f"Two stochastic layers (IWAE): L_{s['iwae_k']} on test images",
        format_rows(pick("iwae2"), [
            ("model", "model", "s"), ("test_log_likelihood", f"L_{s['iwae_k']}", ".2f"), ("test_elbo", "test ELBO", ".2f"),
            ("active_units_z1", "active z1", ".1f"), ("active_units_z2", "active z2", ".1f"), ("seconds_per_epoch", "s/epoch", ".3f"),
        ]),
        "",
        "MSVAE vs stage 1 alone (grey levels; sharpness relative to real test images)",
        format_rows(pick("msvae"), [
            ("model", "model", "s"), ("recon_l1_stage1", "l1 stage 1", ".2f"), ("recon_l1_final", "l1 final", ".2f"),
            ("recon_l2_stage1", "l2 stage 1", ".2f"), ("recon_l2_final", "l2 final", ".2f"),
            ("sample_gradient_ratio_final", "sample grad", ".3f"), ("sample_laplacian_ratio_final", "sample LapVar", ".3f"),
            ("recon_gradient_ratio_final", "recon grad", ".3f"), ("test_elbo", "stage-1 ELBO", ".1f"),
            ("seconds_per_epoch", "s/epoch", ".3f"),
        ]),
        "",
        f"CRVAE vs VAE of equal latent size (L_{s['eval_k']}, per-step KL in nats)",
        format_rows(pick("crvae"), [
            ("model", "model", "s"), ("test_elbo", "test ELBO", ".2f"), ("test_log_likelihood", f"L_{s['eval_k']}", ".2f"),
            ("kl_total", "KL total", ".2f"), *kl_steps, ("seconds_per_epoch", "s/epoch", ".3f"),
        ]),
    ])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--backend", default="pyro", help="pyro (default) or numpyro")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--test-points", type=int, default=360, help="test images evaluated (digits has 360)")
    parser.add_argument("--iwae-k", type=int, default=5000, help="importance samples for the IWAE table's L_K")
    parser.add_argument("--eval-k", type=int, default=1000, help="importance samples for the other tables")
    parser.add_argument("--tables", default=",".join(TABLES), help="comma-separated subset of " + ", ".join(TABLES))
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", default=str(RESULTS / "structured.json"))
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    tables = [t for t in args.tables.split(",") if t]
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise SystemExit(f"unknown tables {sorted(unknown)}; choose from {', '.join(TABLES)}")
    started = time.perf_counter()
    rows = [row for seed in range(args.seeds) for name in tables for row in evaluate_table(name, args, seed)]
    out = Path(args.out)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "tables")}
    if out.is_file() and set(tables) != set(TABLES):
        # A subset of the tables rerun with the same settings replaces only those tables' rows.
        previous = json.loads(out.read_text())
        if {k: v for k, v in previous["settings"].items() if k != "tables"} == settings:
            rows = [r for r in previous["rows"] if r["table"] not in tables] + rows
            tables = sorted({r["table"] for r in rows}, key=list(TABLES).index)
    results = {
        "settings": {**settings, "tables": ",".join(tables)},
        "summary": summarise(rows),
        "rows": rows,
        "wall_seconds": time.perf_counter() - started,  # of this invocation (see rerun_tables)
        "rerun_tables": args.tables,
        "machine": machine_info(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"\n({results['wall_seconds']:.0f} s; written to {out})")
    return results


if __name__ == "__main__":
    main()
