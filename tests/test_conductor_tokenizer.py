import pytest
from transformers import AutoTokenizer

from mavid.conductor import M_BOS, M_EOS, build_tiny_tokenizer
from mavid.conductor.format import SPECIAL_TOKENS


def test_train_save_load_round_trip(tmp_path) -> None:
    tok = build_tiny_tokenizer(vocab_size=1024)
    assert len(tok) <= 1024
    # special tokens come first, so their ids are below any vocab_size
    assert tok.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(len(SPECIAL_TOKENS)))
    assert (tok.audio_token, tok.video_token, tok.vision_bos_token) == (
        "<|AUDIO|>",
        "<|VIDEO|>",
        "<|vision_bos|>",
    )
    text = f"Hello there, héllo 👋!{M_BOS}nods gently{M_EOS}<|im_end|>"
    ids = tok(text)["input_ids"]
    assert tok.convert_tokens_to_ids(M_BOS) in ids and tok.eos_token_id == ids[-1]
    assert tok.decode(ids) == text  # byte-level: lossless, even for unseen characters
    assert "<m_" not in tok.decode(ids, skip_special_tokens=True)

    tok.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").exists()
    again = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert again(text)["input_ids"] == ids
    assert again.audio_token_id == tok.audio_token_id


def test_custom_corpus_and_determinism() -> None:
    corpus = ["the museum opens at nine"] * 50 + ["tickets cost twelve euros"] * 50
    a = build_tiny_tokenizer(lambda: corpus, vocab_size=400)
    b = build_tiny_tokenizer(lambda: corpus, vocab_size=400)
    assert a.get_vocab() == b.get_vocab()
    # frequent domain words become single tokens
    assert len(a(" museum")["input_ids"]) == 1  # byte-level BPE: the space is part of it


def test_bad_corpus_and_vocab() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        build_tiny_tokenizer(vocab_size=100)
    with pytest.raises(TypeError, match="str"):
        build_tiny_tokenizer(lambda: [b"bytes"])
