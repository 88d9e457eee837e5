"""MEM-VAE in Pyro: model (mevae.1–mevae.3), guide (mevae.4), objective (mevae.5).

Li, Zhu & Zhang, Learning to Generate with Memory, ICML 2016 (official code
``thu-ml/MEM_DGM``). The VAE's prior and guide; the decoder's hidden layers read a
learned external memory (:class:`guides.torch_memory.MemoryDecoder`). Model and
guide record their hidden activations as ``pyro.deterministic`` sites, which the
objective (:class:`~zoo.pyro_backend.objectives.LocalReconstructionELBO`) ties
together; the importance weights for evaluation ignore them, so the IS-NLL carries
no LRE.
"""

import pyro
import pyro.distributions as dist
import torch

from guides.memory import matched_vae_hidden, mevae_count
from guides.torch_memory import ActivationEncoder, MemoryDecoder
from guides.torch_nets import positive_scale
from zoo.pyro_backend.objectives import LocalReconstructionELBO
from zoo.pyro_backend.variant import PyroVariant, mean_of, observation


def decoder_output(out: torch.Tensor, likelihood: str):
    """Bernoulli logits as they are; a Gaussian's location and positive scale."""
    if likelihood == "bernoulli":
        return out
    loc, raw_scale = out.chunk(2, dim=-1)
    return loc, positive_scale(raw_scale)


class Variant(PyroVariant):
    def __init__(self, config, x_dim, num_classes=10):
        super().__init__(config, x_dim, num_classes)
        self.encoder = ActivationEncoder(x_dim, config.hidden, config.z_dim, config.activation)
        out_dim = x_dim if config.likelihood == "bernoulli" else 2 * x_dim
        self.decoder = MemoryDecoder(config.z_dim, tuple(reversed(config.hidden)), out_dim, config.slots,
                                     config.activation, config.combinator)

    def model(self, x, **batch):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            z = pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], self.config.z_dim), 1.0).to_event(1))
            out, hiddens = self.decoder(z)  # (mevae.2, mevae.3)
            for i, h in enumerate(hiddens):
                pyro.deterministic(f"h_dec_{i}", h, event_dim=1)
            pyro.sample("x", observation(decoder_output(out, self.config.likelihood), self.config.likelihood), obs=x)

    def guide(self, x, **batch):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0], dim=-1):
            loc, scale, hiddens = self.encoder(x)  # (mevae.4)
            for i, h in enumerate(hiddens):
                pyro.deterministic(f"h_enc_{i}", h, event_dim=1)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def objective(self):
        return LocalReconstructionELBO(self.config.k, self.config.lre_weight, self.config.lre_pairs(), self.config.analytic_kl)

    def decode(self, z) -> torch.Tensor:
        out, _ = self.decoder(z)
        return mean_of(decoder_output(out, self.config.likelihood), self.config.likelihood)

    @torch.no_grad()
    def attention(self, z) -> list[torch.Tensor]:
        """The slot attention of each memory layer for codes ``z`` (decoder order)."""
        h, found = z, []
        for i, linear in enumerate(self.decoder.linears):
            h_g = self.decoder.act(linear(h))
            if str(i) in self.decoder.memories:
                memory = self.decoder.memories[str(i)]
                found.append(memory.attention(h_g))
                h = self.decoder.act(self.decoder.combinators[str(i)](h_g, memory(h_g)))
            else:
                h = h_g
        return found

    def extra_metrics(self, dataset, device) -> dict:
        """The parameter count (equal to :func:`guides.memory.mevae_count`), the hidden
        widths of the parameter-matched VAE, and the mean slot attention on test codes."""
        c = self.config
        count = sum(p.numel() for p in self.parameters())
        assert count == mevae_count(self.x_dim, c.z_dim, c.hidden, c.slots, c.combinator, c.likelihood)
        z = self.encode(torch.as_tensor(dataset.x_test[:500], device=device))
        return {
            "num_parameters": int(count),
            "matched_vae_hidden": list(matched_vae_hidden(self.x_dim, c.z_dim, len(c.hidden), count, c.likelihood)),
            "mean_slot_attention": [float(a.mean()) for a in self.attention(z)],
        }
