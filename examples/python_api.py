"""The Python API in a dozen lines: train a VAE on the embedded digits, then use it.

Run: ``python examples/python_api.py``. The Getting started page shows this file.
"""

import zoo


def main(backend: str = "pyro", epochs: int = 20) -> dict:
    model = zoo.train("vae", backend=backend, epochs=epochs)  # digits, in a temporary run folder
    x = model.test_data()["x"][:100]           # (100, 64) test images, pixels in [0, 1]
    z = model.encode(x)                        # (100, 10) posterior means of q(z | x)
    x_mean = model.decode(z)                   # (100, 64) means of p(x | z)
    log_px = model.log_likelihood(x, k=1000)   # (100,) importance-sampled log p(x)
    khat = model.psis_khat(x, k=1000)          # (100,) trust in that estimate (<= 0.7: good)
    print(f"{model}\nlog p(x) = {log_px.mean():.2f} nats; k-hat > 0.7 for {(khat > 0.7).mean():.0%} of x")
    print(f"mean squared reconstruction error {((x - x_mean) ** 2).mean():.4f}")
    return {"z": z, "log_px": log_px, "khat": khat, "samples": model.sample(16)}


if __name__ == "__main__":
    main()
