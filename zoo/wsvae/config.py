"""WSVAE hyperparameters: recurrent network sizes, the sleep phase, and the two
standard remedies of text VAEs against posterior collapse (word dropout, KL annealing)."""

from dataclasses import dataclass

from zoo.config import ConfigError, VariantConfig


@dataclass
class Config(VariantConfig):
    z_dim: int = 16
    embed_dim: int = 32  # token embedding width e(x), encoder and decoder each
    rnn_size: int = 128  # LSTM state width, encoder and decoder each
    sleep: bool = True  # alternate the sleep step (wsvae.5) with the wake step; False: the VAE-LM
    sleep_batch: int = 0  # dreams per sleep step; 0 = the training batch size
    # "tokens": dreams are sampled tokens, theta fixed (wsvae.5, the sleep-phi step);
    # "soft": dreams are expected embeddings, differentiable in theta too (wsvae.6).
    sleep_mode: str = "tokens"
    word_dropout: float = 0.0  # probability of replacing a decoder input token by <unk> in the wake step
    kl_anneal_steps: int = 0  # linear warm-up of the KL weight from 0 to 1 over this many steps; 0 = none
    condition_on_z: bool = True  # False: the decoder sees z = 0, an LSTM language model of the same size
    eval_particles: int = 100  # importance samples per test sequence of the perplexity (extra metrics)
    eval_limit: int = 1000  # test sequences the extra metrics use (the first ones)

    def validate(self) -> None:
        super().validate()
        for name in ("embed_dim", "rnn_size", "eval_particles", "eval_limit"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.word_dropout < 1.0:
            raise ConfigError(f"word_dropout must be in [0, 1), got {self.word_dropout}")
        if self.sleep_batch < 0 or self.kl_anneal_steps < 0:
            raise ConfigError("sleep_batch and kl_anneal_steps must be non-negative")
        if self.sleep_mode not in ("tokens", "soft"):
            raise ConfigError(f"sleep_mode must be 'tokens' or 'soft', got {self.sleep_mode!r}")
        for name in ("sleep", "condition_on_z"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")


def get_config() -> Config:
    return Config()


# Evaluation sizes shared by both backends' programs.
BLOCK = 100  # test sequences per evaluation block
NUM_SAMPLES_SHOWN = 10  # prior samples decoded into the metrics
