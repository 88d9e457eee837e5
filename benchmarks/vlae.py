"""The VLAE's lossy-code claim at equal budget (Chen et al. 2017, reduced protocol).

Five models train round-robin (one epoch of each in turn, so load from elsewhere
on the machine hits them alike) on the same dynamically binarized data:

- the zoo's VAE (784-400-50 MLP, factorized Bernoulli decoder);
- a factorized decoder with the VLAE's own encoder and z network (``layers=0``,
  N(0, I) prior, no free bits): the reference for how many nats z carries when the
  decoder cannot model anything by itself;
- the local PixelCNN without z (``z_channels=0``): what the window alone achieves;
- the local PixelCNN with z and a N(0, I) prior (``flow_steps=0``);
- the VLAE: local PixelCNN, autoregressive-flow prior, free bits.

For each: the importance-sampled test NLL (``--is-particles`` draws on the first
``--is-points`` test images), the test ELBO, the KL per image, the reconstruction
term and the share of -ELBO carried by z (``kl_fraction``, one draw of q(z|x) per
image on the first ``--code-points`` test images), and seconds per epoch (median
over the epochs after the first). The claim: the VLAE's NLL beats the VAE's and the
unconditional PixelCNN's, while its KL and KL share stay below the factorized
decoder's (a lossy code). The script is not part of CI.

    python benchmarks/vlae.py                                    # Fashion-MNIST, 10k subset
    python benchmarks/vlae.py --dataset digits --epochs 2        # smoke run

It writes ``benchmarks/results/vlae.json`` and prints the table.
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

CONTENDERS = {
    "VAE (MLP, factorized decoder)": ("vae", {}),
    "factorized decoder, VLAE networks": ("vlae", {"layers": 0, "flow_steps": 0, "free_bits": 0.0}),
    "local PixelCNN without z": ("vlae", {"z_channels": 0, "free_bits": 0.0}),
    "local PixelCNN + N(0, I) prior": ("vlae", {"flow_steps": 0}),
    "VLAE (local PixelCNN + AF prior)": ("vlae", {}),
}


@dataclass
class Settings:
    dataset: str = "fashion-mnist"
    epochs: int = 4
    limit_train: int | None = 10_000
    limit_test: int | None = 1000
    batch_size: int = 100
    lr: float = 2e-3
    seed: int = 0
    is_points: int = 200
    is_particles: int = 100
    code_points: int = 1000

    def options(self) -> TrainOptions:
        return TrainOptions(
            backend="pyro", dataset=self.dataset, binarize="dynamic", epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, seed=self.seed, limit_train=self.limit_train,
            limit_test=self.limit_test,
        )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def use(trainer):
    """Empty Pyro's global param store, so ``pyro.module`` registers this trainer's
    own networks (several Pyro models in one process share module names)."""
    import pyro

    pyro.clear_param_store()
    return trainer


def code_metrics(trainer, num_points: int) -> dict:
    """KL per image, reconstruction term and KL share, for any variant (the VAE too),
    from one draw of the guide per image (the free-bits term's ``elbo_terms``)."""
    import torch

    from zoo.pyro_backend.objectives import elbo_terms

    x = torch.as_tensor(trainer.test_data()["x"][:num_points], device=trainer.device)
    variant = use(trainer).variant
    variant.eval()
    kl = nll = 0.0
    with torch.no_grad():
        for start in range(0, len(x), 500):
            reconstruction, kl_sites = elbo_terms(variant.model, variant.guide, x=x[start : start + 500])
            kl += float(sum(kl_sites.values()).sum())
            nll -= float(reconstruction.sum())
    kl, nll = kl / len(x), nll / len(x)
    return {"kl_per_image": kl, "reconstruction_nll": nll, "kl_fraction": kl / (kl + nll)}


def run(settings: Settings) -> list[dict]:
    trainers, seconds, losses = {}, {}, {}
    for label, (variant, overrides) in CONTENDERS.items():
        config = override(registry.default_config(variant), {k: json.dumps(v) for k, v in overrides.items()})
        trainers[label] = make_trainer(variant, config, settings.options())
        seconds[label] = []
    for epoch in range(settings.epochs):
        for label, trainer in trainers.items():
            use(trainer)
            started = time.perf_counter()
            loss = trainer.run_epoch(epoch)
            seconds[label].append(time.perf_counter() - started)
            losses[label] = loss
            log(f"  {label:<34} epoch {epoch + 1:>2}/{settings.epochs}  loss {loss:9.3f}  ({seconds[label][-1]:.1f} s)")
            if not np.isfinite(loss):
                raise RuntimeError(f"{label} diverged in epoch {epoch + 1}")
    rows = []
    for label, trainer in trainers.items():
        started = time.perf_counter()
        arrays = {k: v[: settings.is_points] for k, v in use(trainer).test_data().items()}
        found = importance_sampled_metrics(trainer, arrays, settings.is_particles, block_size=50, particle_chunk=100)
        row = {
            "model": label,
            "variant": CONTENDERS[label][0],
            "settings": CONTENDERS[label][1],
            "test_nll": found["test_nll"],
            "test_nll_stderr": found["test_log_likelihood_stderr"],
            "test_elbo": found["test_elbo"],
            **code_metrics(trainer, settings.code_points),
            "seconds_per_epoch": statistics.median(seconds[label][1:] or seconds[label]),
            "final_train_loss": losses[label],
        }
        row["evaluation_seconds"] = time.perf_counter() - started
        rows.append(row)
        log(f"  evaluated {label} ({row['evaluation_seconds']:.0f} s)")
    return rows


def verdicts(rows: list[dict]) -> dict:
    """The claims of the card, read off the table (one seed: no error bars but the
    NLL's standard error over test images)."""
    by = {row["model"]: row for row in rows}
    vlae, vae = by["VLAE (local PixelCNN + AF prior)"], by["VAE (MLP, factorized decoder)"]
    factorized, unconditional = by["factorized decoder, VLAE networks"], by["local PixelCNN without z"]
    gaussian = by["local PixelCNN + N(0, I) prior"]
    return {
        "vlae.nll_vs_vae": vlae["test_nll"] < vae["test_nll"],
        "vlae.nll_vs_unconditional": vlae["test_nll"] < unconditional["test_nll"],
        "vlae.lossy_kl": 0 < vlae["kl_per_image"] < factorized["kl_per_image"],
        "vlae.lossy_fraction": vlae["kl_fraction"] < factorized["kl_fraction"],
        "vlae.af_prior": vlae["test_nll"] < gaussian["test_nll"],
    }


def report(results: dict) -> str:
    header = (
        f"{'model':<34} {'test NLL':>14} {'test ELBO':>10} {'KL/image':>9} {'rec. NLL':>9} "
        f"{'KL share':>9} {'s/epoch':>8}"
    )
    lines = [header, "-" * len(header)]
    for row in results["rows"]:
        lines.append(
            f"{row['model']:<34} {row['test_nll']:>8.2f} ±{row['test_nll_stderr']:<4.2f} {row['test_elbo']:>10.2f} "
            f"{row['kl_per_image']:>9.2f} {row['reconstruction_nll']:>9.2f} {row['kl_fraction']:>9.3f} "
            f"{row['seconds_per_epoch']:>8.1f}"
        )
    lines.append("")
    lines.extend(f"{claim:<28} {'holds' if ok else 'does not hold'}" for claim, ok in results["verdicts"].items())
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        kind = int if field.name not in ("dataset", "lr") else (float if field.name == "lr" else str)
        parser.add_argument("--" + field.name.replace("_", "-"), type=kind, default=getattr(defaults, field.name))
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default=str(RESULTS / "vlae.json"))
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    settings = Settings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)})
    started = time.perf_counter()
    rows = run(settings)
    results = {
        "settings": dataclasses.asdict(settings),
        "command": "python benchmarks/vlae.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": rows,
        "verdicts": verdicts(rows),
        "wall_seconds": time.perf_counter() - started,
        "machine": machine_info(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"\n({results['wall_seconds']:.0f} s; written to {out})")
    return results


if __name__ == "__main__":
    main()
