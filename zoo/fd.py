"""Sample quality by a fixed classifier: Fréchet distance of its features, class fidelity.

The zoo's offline stand-in for the FID (Heusel et al. 2017): no Inception weights can
be downloaded here, so a small CNN classifier is trained once per dataset by a project
command and cached beside the datasets, with its training recipe, test accuracy and
the SHA-256 of its weights::

    python -m zoo.fd train --dataset fashion-mnist   # once (about a minute on 2 cores)
    python -m zoo.fd show --dataset fashion-mnist

Its penultimate (128-d) features give

- the **Fréchet distance** ``FD = ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})``
  between the Gaussians fitted to the features of test images and of generated
  images (prior samples, or reconstructions of the test images): lower is closer;
- **class fidelity**: the classifier's accuracy on images generated for a given class
  (CVAE-GAN's "discriminability"), on all classes and, for Fashion-MNIST, on the
  confusable tops {T-shirt, pullover, coat, shirt}.

FD numbers depend on the classifier, so they compare models evaluated with the same
cached classifier (same recipe and checksum, recorded in every result) and are not
comparable with published FIDs. When a variant's evaluation finds no classifier in
the cache it trains one with the recipe below, as a dataset is downloaded on first
use. Training uses torch; the features are computed in the caller's backend (torch
for Pyro runs, Flax for NumPyro runs) from the same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from zoo.data import DataError, default_cache_dir, load_dataset

# The training recipe per dataset: the architecture (guides.torch_conv.ConvNet) and
# the optimisation. Part of the cache record; a changed recipe retrains.
RECIPES = {
    "digits": {"channels": [16, 32], "hidden": [128], "epochs": 20, "batch_size": 64, "lr": 2e-3, "seed": 0},
    "mnist": {"channels": [16, 32], "hidden": [128], "epochs": 3, "batch_size": 128, "lr": 1e-3, "seed": 0},
    "fashion-mnist": {"channels": [16, 32], "hidden": [128], "epochs": 4, "batch_size": 128, "lr": 1e-3, "seed": 0},
}
# Fashion-MNIST's upper-body garments, the fine-grained subset of CVAE-GAN's protocol.
FASHION_TOPS = (0, 2, 4, 6)  # T-shirt/top, pullover, coat, shirt
EVALUATION_IMAGES = 2000  # test images (and as many samples) per FD
CACHE_FOLDER = "fd-classifier"


class FDError(RuntimeError):
    """A problem with the cached classifier the user can fix."""


# --- the Fréchet distance ---------------------------------------------------------


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of ``features`` (N, F), in float64."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD between Gaussians fitted to two feature sets (N, F) and (M, F).

    ``(S_a S_b)^{1/2}`` by ``scipy.linalg.sqrtm``; its tiny imaginary part (round-off
    of a product of two positive semi-definite matrices) is dropped.
    """
    from scipy import linalg

    mu_a, cov_a = gaussian_statistics(a)
    mu_b, cov_b = gaussian_statistics(b)
    root = linalg.sqrtm(cov_a @ cov_b)
    root = np.real(root)
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * root))
    return max(value, 0.0)


# --- the cached classifier --------------------------------------------------------


def cache_paths(dataset: str) -> tuple[Path, Path]:
    """``(weights .npz, record .json)`` of ``dataset``'s classifier in the data cache."""
    folder = default_cache_dir() / CACHE_FOLDER
    return folder / f"{dataset}.npz", folder / f"{dataset}.json"


def recipe_of(dataset: str) -> dict:
    if dataset not in RECIPES:
        raise FDError(f"no FD classifier recipe for {dataset!r}; image datasets: {', '.join(RECIPES)}")
    return RECIPES[dataset]


def train_classifier(dataset: str, data_dir=None, progress: bool = True) -> dict:
    """Train ``dataset``'s classifier with its recipe, cache it, return its record."""
    import torch

    from guides.torch_conv import ConvNet

    recipe = recipe_of(dataset)
    data = load_dataset(dataset, data_dir=data_dir, binarize="none")
    started = time.perf_counter()
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    rng = np.random.default_rng(recipe["seed"])
    # fork_rng: training it in the middle of a run's evaluation leaves the run's torch
    # stream untouched; enable_grad: that evaluation may run under torch.no_grad().
    with torch.random.fork_rng(), torch.enable_grad():
        torch.manual_seed(recipe["seed"])
        net = ConvNet(data.image_shape, recipe["channels"], recipe["hidden"], data.num_classes)
        optimizer = torch.optim.Adam(net.parameters(), lr=recipe["lr"])
        _fit(net, optimizer, x, y, rng, recipe, dataset, progress)
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(block)[0] for block in torch.as_tensor(data.x_test).split(1000)])
    accuracy = float((logits.argmax(-1).numpy() == data.y_test).mean())
    weights_path, record_path = cache_paths(dataset)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **{k: v.detach().numpy() for k, v in net.state_dict().items()})
    blob = buffer.getvalue()
    from zoo.run import atomic_write

    atomic_write(weights_path, blob)
    record = {
        "dataset": dataset,
        "recipe": recipe,
        "architecture": "guides.torch_conv.ConvNet (5x5 stride-2 convs, leaky ReLU; penultimate = last hidden layer)",
        "image_shape": list(data.image_shape),
        "num_classes": int(data.num_classes),
        "test_accuracy": accuracy,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "seconds": time.perf_counter() - started,
        "torch": torch.__version__,
    }
    atomic_write(record_path, json.dumps(record, indent=2).encode())
    return record


def _fit(net, optimizer, x, y, rng, recipe: dict, dataset: str, progress: bool) -> None:
    """Minibatch Adam on the cross-entropy, ``recipe["epochs"]`` passes."""
    import torch
    from torch.nn import functional as F

    for epoch in range(recipe["epochs"]):
        order = torch.as_tensor(rng.permutation(len(x)))
        for start in range(0, len(x), recipe["batch_size"]):
            index = order[start : start + recipe["batch_size"]]
            loss = F.cross_entropy(net(x[index])[0], y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if progress:
            print(f"fd classifier {dataset}: epoch {epoch + 1}/{recipe['epochs']}", file=sys.stderr)


def load_classifier(dataset: str, train_if_missing: bool = True) -> tuple[dict, dict]:
    """``(state dict of numpy arrays, record)`` of the cached classifier.

    Trained (and cached) first when missing or when its recipe changed; a file whose
    checksum differs from its record is refused.
    """
    weights_path, record_path = cache_paths(dataset)
    record = json.loads(record_path.read_text()) if record_path.exists() and weights_path.exists() else None
    if record is None or record.get("recipe") != recipe_of(dataset):
        if not train_if_missing:
            raise FDError(f"no FD classifier for {dataset} in {weights_path.parent}; run 'python -m zoo.fd train --dataset {dataset}'")
        print(f"training the FD classifier of {dataset} (cached in {weights_path.parent})", file=sys.stderr)
        record = train_classifier(dataset, progress=False)
    blob = weights_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != record["sha256"]:
        raise FDError(
            f"{weights_path} does not match the checksum in {record_path.name}: it is damaged; "
            f"delete both files and run 'python -m zoo.fd train --dataset {dataset}'"
        )
    with np.load(io.BytesIO(blob)) as arrays:
        state = {key: arrays[key] for key in arrays.files}
    return state, record


_FEATURE_FUNCTIONS: dict = {}


def classifier_outputs(dataset: str, x: np.ndarray, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """``(class logits, penultimate features)`` of the cached classifier on flat images,
    computed by torch (``backend="pyro"``) or Flax (``"numpyro"``) from the same weights."""
    key = (dataset, backend, str(default_cache_dir()))
    if key not in _FEATURE_FUNCTIONS:
        state, record = load_classifier(dataset)
        shape, classes = tuple(record["image_shape"]), record["num_classes"]
        channels, hidden = record["recipe"]["channels"], record["recipe"]["hidden"]
        if backend == "pyro":
            import torch

            from guides.torch_conv import ConvNet

            net = ConvNet(shape, channels, hidden, classes)
            net.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
            net.eval()

            def run(block):
                with torch.no_grad():
                    logits, _, features = net(torch.as_tensor(block, dtype=torch.float32))
                return logits.numpy(), features.numpy()

        else:
            import jax

            from guides.flax_conv import ConvNet, params_from_state_dict

            net = ConvNet(shape, tuple(channels), tuple(hidden), classes)
            params = params_from_state_dict(state)
            apply = jax.jit(lambda block: net.apply({"params": params}, block))

            def run(block):
                logits, _, features = apply(block.astype(np.float32))
                return np.asarray(logits), np.asarray(features)

        _FEATURE_FUNCTIONS[key] = (run, record)
    run, _ = _FEATURE_FUNCTIONS[key]
    outputs = [run(np.asarray(x[i : i + 500])) for i in range(0, len(x), 500)]
    return np.concatenate([o[0] for o in outputs]), np.concatenate([o[1] for o in outputs])


# --- what a variant's evaluation reports ------------------------------------------


def evaluation_images(dataset) -> np.ndarray:
    """The test images the FD compares against (the first ``EVALUATION_IMAGES``)."""
    return np.asarray(dataset.x_test[:EVALUATION_IMAGES], dtype=np.float32)


def gradient_energy(x: np.ndarray, image_shape) -> float:
    """Mean squared difference of neighbouring pixels: blur lowers it, sharp edges raise it."""
    images = np.asarray(x, dtype=np.float64).reshape(-1, *image_shape)
    return float(np.mean(np.diff(images, axis=1) ** 2) + np.mean(np.diff(images, axis=2) ** 2))


def sample_quality(dataset, x: np.ndarray, samples: np.ndarray, reconstructions: np.ndarray, backend: str) -> dict:
    """FD of prior samples and of reconstructions against the test images ``x``, the
    reconstructions' pixel MSE and the images' gradient energies."""
    _, real = classifier_outputs(dataset.name, x, backend)
    _, fake = classifier_outputs(dataset.name, samples, backend)
    _, recon = classifier_outputs(dataset.name, reconstructions, backend)
    record = _FEATURE_FUNCTIONS[(dataset.name, backend, str(default_cache_dir()))][1]
    return {
        "fd_samples": frechet_distance(real, fake),
        "fd_reconstructions": frechet_distance(real, recon),
        "fd_num_images": int(len(x)),
        "fd_classifier_sha256": record["sha256"][:16],
        "fd_classifier_accuracy": record["test_accuracy"],
        "reconstruction_mse": float(np.mean((np.asarray(reconstructions) - x) ** 2)),
        "gradient_energy_test": gradient_energy(x, dataset.image_shape),
        "gradient_energy_samples": gradient_energy(samples, dataset.image_shape),
    }


def class_fidelity(dataset, samples: np.ndarray, labels: np.ndarray, backend: str) -> dict:
    """The classifier's accuracy on ``samples`` generated for the classes ``labels``:
    on all of them, and on the samples of Fashion-MNIST's confusable tops
    {T-shirt, pullover, coat, shirt}."""
    logits, _ = classifier_outputs(dataset.name, samples, backend)
    labels = np.asarray(labels)
    result = {"class_fidelity": float(np.mean(logits.argmax(-1) == labels))}
    if dataset.name == "fashion-mnist":
        tops = np.isin(labels, FASHION_TOPS)
        if tops.any():
            result["class_fidelity_tops"] = float(np.mean(logits[tops].argmax(-1) == labels[tops]))
    return result


# --- command line ------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.fd", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("train", "show"))
    parser.add_argument("--dataset", default="digits", choices=tuple(RECIPES))
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            record = train_classifier(args.dataset)
        else:
            _, record = load_classifier(args.dataset, train_if_missing=False)
    except (FDError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({**record, "path": str(cache_paths(args.dataset)[0])}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
