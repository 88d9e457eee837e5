"""Text datasets (zoo.text): the offline corpora, their split and vocabulary, the
checked download of the Penn Treebank, and one-line errors for missing or damaged
files. The ``words`` and ``glosses`` corpora need the Debian packages ``wamerican``
and ``wordnet-base``; without them their tests skip."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from zoo import text
from zoo.cli import main
from zoo.data import DataError, load_dataset

HAS_WORDS = text.WORDS_SYSTEM_FILE.is_file()
HAS_WORDNET = all((text.WORDNET_SYSTEM_DIR / name).is_file() for name in text.WORDNET_FILES)
needs_words = pytest.mark.skipif(not HAS_WORDS, reason="Debian package wamerican not installed")
needs_wordnet = pytest.mark.skipif(not HAS_WORDNET, reason="Debian package wordnet-base not installed")


def test_encode_decode_mask_and_lengths():
    vocabulary = text.SPECIAL_TOKENS + tuple("abc")
    x = text.encode([list("ab"), list("cab"), []], vocabulary, 5)
    assert x.tolist() == [[3, 4, 1, 0, 0], [5, 3, 4, 1, 0], [1, 0, 0, 0, 0]]
    assert text.decode(x, vocabulary) == ["ab", "cab", ""]
    assert text.sequence_lengths(x).tolist() == [3, 4, 1]
    # A row cut before its <eos> (a long sample) is all tokens; symbols unknown to the
    # vocabulary become <unk>.
    assert text.token_mask(np.array([[3, 4, 5]])).all()
    assert text.encode([list("az")], vocabulary, 4)[0].tolist() == [3, text.UNK, text.EOS, text.PAD]
    with pytest.raises(ValueError):
        text.encode([list("abcd")], vocabulary, 4)  # no room for <eos>


@needs_words
def test_words_split_vocabulary_and_padding():
    data = load_dataset("words")
    assert data.vocabulary[:3] == text.SPECIAL_TOKENS and data.vocab_size == 29 == data.num_classes
    assert data.x_train.dtype == np.int64 and data.x_train.shape[1] == data.x_dim == 13
    sizes = len(data.x_train), len(data.x_valid), len(data.x_test)
    assert sizes[0] > 50000 and abs(sizes[1] - sizes[2]) <= 1 and sizes[1] / sum(sizes) == pytest.approx(0.05, abs=0.001)
    words = [set(data.decode(x)) for x in (data.x_train, data.x_valid, data.x_test)]
    assert not (words[0] & words[1]) and not (words[0] & words[2]) and not (words[1] & words[2])
    every = np.concatenate([data.x_train, data.x_valid, data.x_test])
    assert (text.sequence_lengths(every) == (every != text.PAD).sum(1)).all()  # one <eos>, then padding only
    assert (every != text.UNK).all()
    assert all(w.isalpha() and w.islower() and len(w) <= 12 for w in data.decode(data.x_test))
    assert (data.y_test == text.sequence_lengths(data.x_test)).all()
    # The split does not move with the run's seed, and limits take subsets of it.
    again = load_dataset("words", seed=5, limit_train=100, limit_test=10)
    assert set(data.decode(again.x_train)) <= words[0] and set(data.decode(again.x_test)) <= words[2]


@needs_wordnet
def test_glosses_are_word_level_sentences():
    data = load_dataset("glosses", limit_train=2000, limit_test=100)
    assert data.vocab_size == text.GLOSSES_VOCABULARY + 3 and data.x_dim == text.GLOSSES_MAX_TOKENS + 1
    assert data.separator == " " and len(data.x_valid) > 5000
    sentences = data.decode(data.x_test)
    assert all(1 <= len(s.split()) <= 20 for s in sentences)
    assert "a" in data.vocabulary and "the" in data.vocabulary


def test_gloss_lines_are_parsed_up_to_the_examples():
    lines = (
        "  1 This software and database is being provided\n"
        '00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived; "an example"\n'
    )
    assert text.gloss_sentences(lines) == [["that", "which", "is", "perceived"]]


def test_missing_word_list_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "WORDS_SYSTEM_FILE", tmp_path / "none")
    with pytest.raises(DataError, match="apt-get install wamerican") as error:
        load_dataset("words", data_dir=tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "content, message",
    [(b"\xff\xfe\x00\x01binary", "NUL bytes"), (b"caf\xe9\n", "not UTF-8"), (b"Hello\nWORLD\n1234\n", "usable words")],
    ids=["binary", "latin-1", "no-words"],
)
def test_damaged_word_list_is_a_one_line_error(tmp_path, content, message):
    (tmp_path / "american-english").write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        load_dataset("words", data_dir=tmp_path)
    assert "\n" not in str(error.value) and "american-english" in str(error.value)


def test_missing_or_damaged_wordnet_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="wordnet-base"):
        load_dataset("glosses", data_dir=tmp_path)
    for name in text.WORDNET_FILES:
        (tmp_path / name).write_text("  license header only\n")
    with pytest.raises(DataError, match="no WordNet gloss lines"):
        load_dataset("glosses", data_dir=tmp_path)


def _ptb_server(folder):
    """Three tiny PTB files served from ``folder`` (file:// URLs), with their MD5s."""
    folder.mkdir()
    sums = {}
    for name, lines in zip(text.PTB_FILES, (["the cat sat", "a dog ran <unk>", "the dog sat"], ["the cat ran"], ["a cat"])):
        data = ("\n".join(" " + line + " " for line in lines) + "\n").encode()
        (folder / name).write_bytes(data)
        sums[name] = hashlib.md5(data).hexdigest()
    return folder.as_uri() + "/", sums


def test_ptb_download_is_checked_and_cached(tmp_path, monkeypatch, isolated_data):
    url, sums = _ptb_server(tmp_path / "server")
    monkeypatch.setattr(text, "PTB_MD5", sums)
    monkeypatch.setattr(text, "PTB_BASE_URL", url)
    data = load_dataset("ptb")
    assert (isolated_data / "ptb" / "ptb.train.txt").is_file()
    assert data.vocabulary == text.SPECIAL_TOKENS + ("a", "cat", "dog", "ran", "sat", "the")
    assert data.decode(data.x_train) == ["the cat sat", "a dog ran <unk>", "the dog sat"]
    assert data.decode(data.x_valid) == ["the cat ran"] and data.x_dim == text.PTB_MAX_TOKENS + 1
    # Second load: from the cache, even with the server gone.
    monkeypatch.setattr(text, "PTB_BASE_URL", (tmp_path / "gone").as_uri() + "/")
    assert load_dataset("ptb").decode(load_dataset("ptb").x_test) == ["a cat"]


def test_ptb_download_with_a_wrong_checksum_is_discarded(tmp_path, monkeypatch, isolated_data):
    url, sums = _ptb_server(tmp_path / "server")
    monkeypatch.setattr(text, "PTB_BASE_URL", url)  # the real sums: these tiny files do not match
    with pytest.raises(DataError, match="MD5 .* expected f26c4b92") as error:
        load_dataset("ptb")
    assert "\n" not in str(error.value)
    assert not list((isolated_data / "ptb").iterdir())  # nothing half-written is left
    monkeypatch.setattr(text, "PTB_BASE_URL", (tmp_path / "gone").as_uri() + "/")
    with pytest.raises(DataError, match="Could not download"):
        load_dataset("ptb")


def test_ptb_from_data_dir_needs_no_download(tmp_path):
    folder = tmp_path / "server"
    _ptb_server(folder)
    assert load_dataset("ptb", data_dir=folder).decode(load_dataset("ptb", data_dir=folder).x_test) == ["a cat"]


@needs_words
def test_cli_rejects_fixed_binarization_of_text_and_images_for_wsvae(tmp_path, capsys):
    assert main(["train", "wsvae", "--dataset", "words", "--binarize", "fixed", "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "binarization does not apply" in capsys.readouterr().err
    assert main(["train", "wsvae", "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a text dataset" in err and len(err.splitlines()) == 1
