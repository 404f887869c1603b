"""The char_lm tf.data chain: tokenization at both levels, vocabulary, windows."""

import numpy as np
import pytest
import tensorflow as tf

from pipelines.char_lm import data
from tests.conftest import assert_data_error


def _strings(ragged):
    return [[t.decode() for t in row] for row in ragged.to_list()]


def test_word_tokens_have_eos_at_sentence_ends_and_blank_lines():
    text = "Hello, World! Is it 3.5 m?\n\nA title\n\nDon't stop. "
    assert _strings(data.tokenize([text], "word")) == [[
        "hello", ",", "world", "!", "<eos>", "is", "it", "3", ".", "5", "m", "?", "<eos>",
        "a", "title", "<eos>", "don't", "stop", ".", "<eos>",
    ]]


def test_sentences_end_with_one_eos_and_prompts_with_none():
    scored = _strings(data.sentence_tokens(["the pair salad", "done.", ""], "word"))
    assert scored == [["the", "pair", "salad", "<eos>"], ["done", ".", "<eos>"], ["<eos>"]]
    prompts = _strings(data.prompt_tokens(["One. Two.", "go on"], "word"))
    assert prompts == [["one", ".", "<eos>", "two", "."], ["go", "on"]]
    assert _strings(data.sentence_tokens(["pär"], "char")) == [["p", "ä", "r"]]


def test_vocabulary_reserves_ids_and_caps_words():
    text = "a a a b b c. d d d d\n\n"
    vocab = data.build_vocabulary(text, "word", max_size=5)
    assert vocab == ["", "[UNK]", "<eos>", "d", "a"]
    vectorizer = data.make_vectorizer(vocab)
    ids = data.token_stream(text, "word", vectorizer)
    assert ids.tolist() == [4, 4, 4, 1, 1, 1, 1, 2, 3, 3, 3, 3, 2]
    chars = data.build_vocabulary("hello", "char", None)
    assert chars[:3] == list(data.RESERVED) and sorted(chars[3:]) == ["e", "h", "l", "o"]
    assert data.UNK_ID not in data.token_stream("hello", "char", data.make_vectorizer(chars))


def test_windows_shift_targets_and_start_with_the_start_token():
    ids = np.arange(3, 3 + 50, dtype="int32")
    ids[10] = data.EOS_ID
    x, y = next(iter(data.make_dataset(ids, window=20, batch_size=2)))
    x, y = x.numpy(), y.numpy()
    assert x.shape == y.shape == (2, 20)
    np.testing.assert_array_equal(y[0], ids[:20])
    assert x[0, 0] == 0 and x[1, 0] == 0
    np.testing.assert_array_equal(x[0, 1:], np.where(ids[:19] == data.EOS_ID, 0, ids[:19]))
    assert x[0, 11] == 0  # the <eos> input became the start token


def test_carry_state_batches_continue_row_by_row():
    ids = np.arange(3, 3 + 100, dtype="int32")
    batches = [y.numpy() for _, y in data.make_dataset(ids, window=10, batch_size=3, carry_state=True)]
    assert len(batches) == 3  # 100 // 3 = 33 tokens per row -> 3 windows of 10
    rows = np.concatenate(batches, axis=1)  # (3, 30)
    np.testing.assert_array_equal(rows[0], ids[:30])
    np.testing.assert_array_equal(rows[1], ids[30:60])


def test_carry_state_windows_start_with_the_previous_target():
    # x<t> = y<t-1> across window boundaries: only a row's first window starts from the
    # start token, and an <eos> target becomes the start token as input.
    ids = np.arange(3, 3 + 60, dtype="int32")
    ids[19] = data.EOS_ID
    pairs = [(x.numpy(), y.numpy())
             for x, y in data.make_dataset(ids, window=10, batch_size=2, carry_state=True)]
    x = np.concatenate([p[0] for p in pairs], axis=1)  # (2, 30)
    y = np.concatenate([p[1] for p in pairs], axis=1)
    np.testing.assert_array_equal(x[:, 0], [0, 0])
    np.testing.assert_array_equal(x[:, 1:], np.where(y[:, :-1] == data.EOS_ID, 0, y[:, :-1]))
    assert pairs[1][0][0, 0] == pairs[0][1][0, -1] and pairs[2][0][0, 0] == 0  # after <eos>


def test_split_and_errors():
    train, valid = data.split_corpus("0123456789", 0.2)
    assert (train, valid) == ("01234567", "89")
    with pytest.raises(ValueError, match="valid_fraction"):
        data.split_corpus("abc", 1.0)
    with pytest.raises(ValueError, match="level"):
        data.tokenize(["x"], "byte")
    with pytest.raises(ValueError, match="too short"):
        data.make_dataset(np.arange(5), window=10, batch_size=1)


def test_default_corpus_is_real_prose():
    text = data.load_corpus()
    assert len(text) > 400_000 and "the" in text


def test_detokenize_words_closes_punctuation():
    tokens = tf.ragged.constant([["hello", ",", "world", "!"]])
    assert data.detokenize(tokens, "word").numpy()[0].decode() == "hello, world!"


# ------------------------------------------------------------ data errors: one line each

ERRORS = [
    ("zero.txt", b"", "{path}: the file is empty"),
    ("bad.txt", b"\xff\xfe", "{path}:1: column 1: bytes b'\\xff' are not valid utf-8 "
                             "(convert the file to UTF-8)"),
    ("two.txt", b"ab", "{path}: corpus too short: the training text has 2 char tokens, fewer "
                       "than the 32 of one window (lower --set window=... or bring more text)"),
    ("missing.txt", None, "{path}: no such file"),
]


@pytest.mark.parametrize("name, content, message", ERRORS)
def test_bad_corpus_files_are_data_errors_naming_the_file(tmp_path, capsys, name, content, message):
    from pipelines.char_lm import TASK
    from pipelines.char_lm.config import PRESETS

    assert_data_error(TASK, PRESETS["small"], tmp_path, capsys, name, content, message)


def test_too_short_for_carried_rows_and_a_lone_train_file(tmp_path):
    import dataclasses

    from pipelines.char_lm.config import PRESETS
    from pipelines.common.textio import DataError

    path = tmp_path / "short.txt"
    path.write_text("x" * 200, encoding="utf-8")
    config = dataclasses.replace(PRESETS["small"], data=str(path), carry_state=True)
    with pytest.raises(DataError) as e:
        data.make_datasets(config)
    assert str(e.value) == (f"{path}: corpus too short: the training text has 180 char tokens, "
                            "fewer than the 512 of 16 rows of one window (carry_state) "
                            "(lower --set window=... or bring more text)")
    with pytest.raises(DataError) as e:
        data.make_datasets(dataclasses.replace(PRESETS["small"], train_file=str(path)))
    assert str(e.value) == f"{path}: --train needs --valid too (or --data FILE to split one file)"
