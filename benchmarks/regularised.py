"""The regularised VAEs of issue 5 against the VAE: InfoVAE, the FAE sweep, LSVAE.

Three tables, each trained in one process on the same data:

``infovae_table()``
    VAE and InfoVAE (alpha = 1, the MMD-VAE, with the default lambda = 1000 and
    with VARIANTS.md's lambda = 100), same networks and Bernoulli likelihood:
    ``MMD(q(z), p(z))`` of the aggregate posterior on test images (infovae.4), the
    accuracy of a 5-nearest-neighbour classifier on ``mu_phi(x)`` fitted with 1000
    labels, the test ELBO and the importance-sampled log-likelihood of the
    unweighted joint.
``fae_sweep()``
    The FAE with F_z in {d, 10 d, 100 d} (lambda_z = 1, VARIANTS.md §16), plus the
    same Gaussian VAE with both penalties off: the realised J(z) against its
    target, J(x'), the KL and the reconstruction MSE.
``lsvae_comparison()``
    The Bernoulli VAE against LSVAE (least squares, sigma0^2 = 1/2, with its L2
    penalty and without it): reconstruction MSE of test images and seconds per
    epoch.

Every model of a table trains round-robin with the others of its table, one
epoch of each in turn, so a burst of load from elsewhere on the machine hits them
all alike (the VAE is trained afresh for each table that has it); seconds per
epoch are medians over the epochs after the first (which holds NumPyro's
compilation). All runs see grey levels (``binarize=none``) and a random training
subset (``--limit-train``). Reconstruction MSE and the Fisher statistics use the
first ``--eval-points`` test images, the bounds the first 500, the MMD five
disjoint blocks of 1000 (mean and standard deviation), the kNN classifier the
whole test set. The script is not part of CI.

    python benchmarks/regularised.py --dataset fashion-mnist
    python benchmarks/regularised.py --dataset digits --epochs 2 --limit-train 500   # smoke run

It writes ``benchmarks/results/regularised.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo import registry
from zoo.config import TrainOptions, override
from zoo.evaluate import importance_sampled_metrics
from zoo.run import make_trainer

from machine import machine_info  # benchmarks/machine.py, beside this script

RESULTS = Path(__file__).parent / "results"


@dataclass
class Settings:
    """What every table shares; the command line sets them."""

    dataset: str = "fashion-mnist"
    backend: str = "pyro"
    epochs: int = 10
    limit_train: int | None = 10_000
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    eval_points: int = 1000  # test images for MSE, MMD, Fisher statistics, kNN codes
    is_points: int = 500  # test images for the importance-sampled log-likelihood
    is_particles: int = 100

    def options(self) -> TrainOptions:
        return TrainOptions(
            backend=self.backend,
            dataset=self.dataset,
            binarize="none",
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            limit_train=self.limit_train,
        )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- training ------------------------------------------------------------------


def use(trainer):
    """Make ``trainer`` the one Pyro talks to.

    Pyro's param store is global and keyed by module name, so two Pyro models in
    one process ("encoder", "decoder") would share weights through it. Emptying it
    before each use makes ``pyro.module`` register that trainer's own parameters
    again (its optimizer state is keyed by those same tensors, so nothing is lost).
    """
    if trainer.backend == "pyro":
        import pyro

        pyro.clear_param_store()
    return trainer


def train_round_robin(runs: dict[str, tuple[str, dict]], settings: Settings) -> dict:
    """Train ``{label: (variant, config overrides)}`` one epoch of each in turn.

    Returns ``{label: (trainer, seconds per epoch)}``, the seconds a median over the
    epochs after the first.
    """
    trainers, seconds = {}, {}
    for label, (variant, overrides) in runs.items():
        config = override(registry.default_config(variant), {k: json.dumps(v) for k, v in overrides.items()})
        trainers[label] = make_trainer(variant, config, settings.options())
        seconds[label] = []
    for epoch in range(settings.epochs):
        for label, trainer in trainers.items():
            use(trainer)
            started = time.perf_counter()
            loss = trainer.run_epoch(epoch)
            seconds[label].append(time.perf_counter() - started)
            log(f"  {label:<28} epoch {epoch + 1:>2}/{settings.epochs}  loss {loss:10.3f}  ({seconds[label][-1]:.2f} s)")
            if not np.isfinite(loss):
                raise RuntimeError(f"{label} diverged in epoch {epoch + 1}")
    return {label: (trainers[label], statistics.median(s[1:] or s)) for label, s in seconds.items()}


# --- evaluation ----------------------------------------------------------------


def test_arrays(trainer, num_points: int) -> dict:
    return {k: v[:num_points] for k, v in trainer.test_data().items()}


def reconstruction_mse(trainer, settings: Settings) -> float:
    """Mean squared error per pixel between test images and the decoded posterior mean."""
    arrays = test_arrays(trainer, settings.eval_points)
    return float(np.mean((trainer.reconstruct(arrays) - arrays["x"]) ** 2))


def likelihood_metrics(trainer, settings: Settings) -> dict:
    arrays = test_arrays(trainer, settings.is_points)
    found = importance_sampled_metrics(trainer, arrays, settings.is_particles)
    return {"test_elbo": found["test_elbo"], f"test_log_likelihood_{settings.is_particles}": found["test_log_likelihood"]}


def latent_metrics(trainer, gamma: float, blocks: int = 5, block_size: int = 1000) -> dict:
    """InfoVAE's latent checks for any trainer whose variant has an ``encoder`` (the VAE too).

    ``MMD(q(z), p(z))`` is estimated on ``blocks`` disjoint blocks of test images,
    each with its own posterior and prior draws, and reported as mean and standard
    deviation: a single estimate on 1000 points has a noise of the order of the
    differences between the models.
    """
    x = trainer.dataset.x_test
    blocks = min(blocks, len(x) // block_size) or 1
    chunks = [x[i * block_size : (i + 1) * block_size] for i in range(blocks)]
    if trainer.backend == "pyro":
        import torch

        from zoo.infovae.pyro_model import aggregate_posterior_mmd, latent_evaluation

        trainer.variant.eval()
        with torch.no_grad():
            found = latent_evaluation(trainer.variant, trainer.dataset, trainer.device, gamma)
            mmds = [aggregate_posterior_mmd(trainer.variant, torch.as_tensor(c, device=trainer.device), gamma) for c in chunks]
    else:
        import jax

        from zoo.infovae.numpyro_model import aggregate_posterior_mmd, latent_evaluation

        key = jax.random.PRNGKey(0)
        found = latent_evaluation(trainer.variant, trainer.params, trainer.dataset, key, gamma)
        mmds = [
            float(aggregate_posterior_mmd(trainer.variant, trainer.params, c, jax.random.fold_in(key, i), gamma))
            for i, c in enumerate(chunks)
        ]
    found["mmd_aggregate_posterior"] = float(np.mean(mmds))
    found["mmd_aggregate_posterior_sd"] = float(np.std(mmds, ddof=1)) if len(mmds) > 1 else None
    found["mmd_blocks"] = len(mmds)
    return found


# --- the three tables ----------------------------------------------------------

def infovae_table(settings: Settings | None = None) -> list[dict]:
    """VAE vs InfoVAE (MMD-VAE): MMD(q(z), p(z)), kNN accuracy with 1000 labels, bounds."""
    settings = settings or Settings()
    infovae = registry.default_config("infovae")
    runs = {
        "VAE": ("vae", {}),
        f"InfoVAE (alpha={infovae.alpha:g}, lambda={infovae.lam:g})": ("infovae", {}),
        # VARIANTS.md §11's minimal version, for comparison with the default.
        f"InfoVAE (alpha={infovae.alpha:g}, lambda=100)": ("infovae", {"lam": 100.0}),
    }
    log("InfoVAE table")
    rows = []
    for label, (trainer, seconds) in train_round_robin(runs, settings).items():
        use(trainer)
        row = {"model": label, "seconds_per_epoch": seconds}
        row.update(latent_metrics(trainer, gamma=infovae.gamma))
        row.update(likelihood_metrics(trainer, settings))
        rows.append(row)
    return rows


def fae_sweep(settings: Settings | None = None, multiples=(1, 10, 100)) -> list[dict]:
    """FAE with F_z = m d (lambda_z = 1), and the Gaussian VAE without the penalties."""
    settings = settings or Settings()
    d = registry.default_config("fae").z_dim
    runs = {"Gaussian VAE (no penalty)": ("fae", {"lambda_z": 0.0, "lambda_x": 0.0})}
    for m in multiples:
        runs[f"FAE F_z={m}d"] = ("fae", {"fisher_z": float(m * d), "lambda_z": 1.0})
    log("FAE sweep")
    rows = []
    for label, (trainer, seconds) in train_round_robin(runs, settings).items():
        use(trainer)
        config = trainer.variant.config
        row = {
            "model": label,
            "F_z": config.fisher_z if config.lambda_z else None,
            "F_x": config.fisher_x if config.lambda_x else None,
            "seconds_per_epoch": seconds,
        }
        row.update(trainer.extra_metrics())
        row["test_elbo"] = likelihood_metrics(trainer, settings)["test_elbo"]
        rows.append(row)
    return rows


def lsvae_comparison(settings: Settings | None = None) -> list[dict]:
    """Bernoulli VAE vs LSVAE with and without its L2 penalty: reconstruction MSE, seconds/epoch."""
    settings = settings or Settings()
    weight_decay = registry.default_config("lsvae").weight_decay
    runs = {
        "VAE": ("vae", {}),
        f"LSVAE (lambda={weight_decay:g})": ("lsvae", {}),
        "LSVAE (lambda=0)": ("lsvae", {"weight_decay": 0.0}),
    }
    log("LSVAE comparison")
    rows = []
    for label, (trainer, seconds) in train_round_robin(runs, settings).items():
        use(trainer)
        rows.append(
            {
                "model": label,
                "likelihood": trainer.variant.config.likelihood,
                "reconstruction_mse": reconstruction_mse(trainer, settings),
                "seconds_per_epoch": seconds,
            }
        )
    return rows


# --- report --------------------------------------------------------------------


def format_rows(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """``columns``: (key, header, format) triples."""
    widths = [max(len(header), 12) for _, header, _ in columns]
    widths[0] = max(widths[0], *(len(str(row[columns[0][0]])) for row in rows))
    lines = ["  ".join(f"{header:<{w}}" for (_, header, _), w in zip(columns, widths))]
    for row in rows:
        cells = []
        for (key, _, fmt), w in zip(columns, widths):
            value = row.get(key)
            cells.append(f"{'-' if value is None else format(value, fmt):<{w}}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def report(results: dict) -> str:
    s = results["settings"]
    header = (
        f"{s['dataset']} ({s['limit_train']} training images, grey levels), {s['backend']}, "
        f"{s['epochs']} epochs, batch {s['batch_size']}, Adam {s['lr']:g}, seed {s['seed']}"
    )
    knn = next(k for k in results["infovae"][0] if k.startswith("knn_accuracy"))
    log_likelihood = next(k for k in results["infovae"][0] if k.startswith("test_log_likelihood"))
    parts = [
        header,
        "",
        "InfoVAE vs VAE (aggregate posterior and latent codes)",
        format_rows(results["infovae"], [
            ("model", "model", "s"), ("mmd_aggregate_posterior", "MMD(q(z),p(z))", ".4f"),
        ("mmd_aggregate_posterior_sd", "sd (5 blocks)", ".4f"),
            (knn, "kNN acc (1000 labels)", ".3f"), ("test_elbo", "test ELBO", ".2f"),
            (log_likelihood, f"IS log p(x) (K={s['is_particles']})", ".2f"), ("seconds_per_epoch", "s/epoch", ".2f"),
        ]),
        "",
        "FAE sweep (lambda_z = 1; J = summed precision, test mean)",
        format_rows(results["fae"], [
            ("model", "model", "s"), ("F_z", "F_z", ".0f"), ("fisher_information_z", "J(z)", ".1f"),
            ("F_x", "F_x'", ".0f"), ("fisher_information_x", "J(x')", ".0f"), ("kl", "KL", ".2f"),
            ("reconstruction_mse", "recon MSE", ".5f"), ("test_elbo", "test ELBO", ".1f"),
        ]),
        "",
        "LSVAE vs Bernoulli VAE",
        format_rows(results["lsvae"], [
            ("model", "model", "s"), ("likelihood", "likelihood", "s"),
            ("reconstruction_mse", "recon MSE", ".5f"), ("seconds_per_epoch", "s/epoch", ".2f"),
        ]),
    ]
    return "\n".join(parts)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Settings()
    parser.add_argument("--dataset", default=defaults.dataset)
    parser.add_argument("--backend", default=defaults.backend, help="pyro (default) or numpyro")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--limit-train", type=int, default=defaults.limit_train)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--eval-points", type=int, default=defaults.eval_points)
    parser.add_argument("--is-particles", type=int, default=defaults.is_particles)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch intra-op threads (default 1: on a small shared machine, more threads wait on each other)",
    )
    parser.add_argument("--out", default=str(RESULTS / "regularised.json"))
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    settings = Settings(
        dataset=args.dataset, backend=args.backend, epochs=args.epochs, limit_train=args.limit_train,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, eval_points=args.eval_points,
        is_particles=args.is_particles,
    )
    started = time.perf_counter()
    results = {
        "settings": dataclasses.asdict(settings),
        "infovae": infovae_table(settings),
        "fae": fae_sweep(settings),
        "lsvae": lsvae_comparison(settings),
    }
    results["wall_seconds"] = time.perf_counter() - started
    results["machine"] = machine_info()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"\n({results['wall_seconds']:.0f} s; written to {out})")
    return results


if __name__ == "__main__":
    main()
