"""The tiny Conductor's word reading: the user's words read as frozen pretrained word vectors."""

import numpy as np
import pytest
import torch
from micro_world import micro_world, one_torch_thread
from safetensors.torch import load_file

from mavid.conductor.format import user_content_start, user_prompt
from mavid.conductor.thinker import ConductorConfig, ThinkerConductor
from mavid.conductor.word_reading import (
    READING_CONFIG_NAME,
    READING_WEIGHTS_NAME,
    WordReading,
    WordReadingConfig,
    applied,
    word_table,
)
from mavid.eval.conductor import run_conductor
from mavid.interfaces import UserTurn
from mavid.train import TrainConfig, train_main


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def conductor() -> ThinkerConductor:
    c = ThinkerConductor.tiny(seed=0, config=ConductorConfig(do_sample=False, max_new_tokens=6))
    with torch.random.fork_rng():
        torch.manual_seed(1)
        c.reading = WordReading(WordReadingConfig(hidden_size=64))
    return c


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_the_table_is_pretrained_and_read_from_the_installed_wheel():
    table = word_table("wordllama-l2-supercat-256")
    hurt, injured, ticket = (table.word(w) for w in ("hurt", "injured", "ticket"))
    assert hurt.shape == (256,) and np.isfinite(hurt).all()
    # a random table would put "hurt" as near "ticket" as "injured"
    assert _cos(hurt, injured) > _cos(hurt, ticket) + 0.1
    assert _cos(table.word("snack"), table.word("sandwich")) > _cos(
        table.word("snack"), table.word("elevator")
    )
    with pytest.raises(ValueError, match="unknown word table"):
        WordReadingConfig(table="glove")


def test_only_the_users_words_get_word_vectors(conductor):
    reading, tok = conductor.reading, conductor.tokenizer
    system, text = "Answer the visitor.", "I hurt my hand, pharaohs!"
    prompt = user_prompt(system, text + "<|vision_bos|><|VIDEO|><|vision_eos|>")
    start = user_content_start(system)
    assert prompt[start : start + len(text)] == text
    ids, vectors, mask = reading.inputs(tok, prompt, start, start + len(text))
    assert ids == tok(prompt)["input_ids"]
    offsets = tok(prompt, return_offsets_mapping=True)["offset_mapping"]
    table = reading.table
    read = {}
    for i, (s, e) in enumerate(offsets):
        piece = prompt[s:e].strip()
        inside = start <= s and e <= start + len(text) + 1
        if mask[i]:
            assert inside and piece.isalpha(), piece
            read.setdefault(tuple(vectors[i].tolist()), []).append(piece)
        else:  # markup, the system prompt, punctuation, placeholders: their own embeddings
            assert not inside or not any(ch.isalpha() for ch in piece), piece
            assert not vectors[i].any()
    words = {"".join(p) for p in read.values()}
    assert words == {"I", "hurt", "my", "hand", "pharaohs"}
    for v, pieces in read.items():  # every piece of a word has the (lower-cased) word's vector
        assert np.allclose(v, table.word("".join(pieces).lower()))


def test_the_reading_replaces_only_the_users_words_and_is_removed_after(conductor):
    turn = UserTurn(text="Where are the toilets?")
    batch = conductor.encoder.encode_prompt(turn, conductor.system_prompt)
    vectors, mask = batch.pop("word_vectors"), batch.pop("word_mask")
    embed = conductor.model.get_input_embeddings()
    ids = batch["input_ids"]
    plain = embed(ids)
    with applied(conductor.model, conductor.reading, vectors, mask):
        read = embed(ids)
        step = embed(ids[:, :1])  # a decoding step: untouched
    assert torch.equal(step, plain[:, :1])
    assert mask.sum() >= 4 and torch.equal(read[~mask], plain[~mask])  # 4 words, >= 4 pieces
    assert torch.allclose(read[mask], conductor.reading(vectors[mask]))
    assert torch.equal(embed(ids), plain)  # hook gone
    with pytest.raises(RuntimeError, match="boom"):
        with applied(conductor.model, conductor.reading, vectors, mask):
            raise RuntimeError("boom")
    assert torch.equal(embed(ids), plain)  # gone also when the block raised


def test_a_batch_made_with_a_reading_is_not_read_without_it(conductor):
    from mavid.conductor.stage1 import collate, directive_logits

    batch = collate([(UserTurn(text="Where is the cafe?"), "Downstairs.", "")], conductor.encoder)
    assert batch["word_mask"].any()
    with pytest.raises(ValueError, match="made with a word reading"):
        directive_logits(conductor.model, batch, None)
    assert directive_logits(conductor.model, batch, conductor.reading).shape[:2] == (
        batch["input_ids"].shape
    )


def test_a_conductor_with_a_reading_saves_loads_and_answers_the_same(conductor, tmp_path):
    turn = UserTurn(text="Where is the cafe?")
    before = run_conductor(conductor, turn)
    conductor.save_pretrained(tmp_path)
    loaded = ThinkerConductor.from_pretrained(tmp_path, conductor.config)
    assert loaded.reading is not None and loaded.reading.config == conductor.reading.config
    assert torch.equal(loaded.reading.proj.weight, conductor.reading.proj.weight)
    assert run_conductor(loaded, turn) == before
    # the reading changes what it answers (the weights are random: the output, not its sense)
    loaded.reading = None
    blind = ThinkerConductor.tiny(seed=0, config=conductor.config)
    assert run_conductor(loaded, turn) == run_conductor(blind, turn)
    # saved again without one: no stale reading files are left to be loaded
    loaded.save_pretrained(tmp_path)
    assert not (tmp_path / READING_CONFIG_NAME).exists()
    assert not (tmp_path / READING_WEIGHTS_NAME).exists()
    assert ThinkerConductor.from_pretrained(tmp_path).reading is None


def test_bad_reading_files_are_named(conductor, tmp_path):
    conductor.save_pretrained(tmp_path)
    (tmp_path / READING_WEIGHTS_NAME).write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match=READING_WEIGHTS_NAME):
        ThinkerConductor.from_pretrained(tmp_path)
    (tmp_path / READING_CONFIG_NAME).write_text('{"table": "wordllama-l2-supercat-256", "x": 1}')
    with pytest.raises(ValueError, match="malformed"):
        ThinkerConductor.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="projects to 32"):
        conductor.reading = WordReading(WordReadingConfig(hidden_size=32))


def test_a_new_reading_keeps_the_tables_geometry_at_the_thinkers_scale(conductor):
    from mavid.data.domain import known_corpus

    with torch.random.fork_rng():
        torch.manual_seed(0)
        reading = WordReading(WordReadingConfig(hidden_size=192))  # the stage-1 Thinker's width
        emb = 0.05 * torch.randn(len(conductor.tokenizer), 192)
    reading.match_scale(emb, conductor.tokenizer, known_corpus())
    table = reading.table
    words = ["hurt", "injured", "ticket", "snack", "sandwich", "elevator", "toilets", "restroom",
             "coffee", "painting", "dog", "goodbye"]  # fmt: skip
    x = torch.from_numpy(np.stack([table.word(w) for w in words]))
    with torch.no_grad():
        y = reading(x)
    own = emb.norm(dim=-1).mean()
    assert 0.5 * own < y.norm(dim=-1).mean() < 2 * own  # the Thinker's scale
    # distances survive the projection (up to scale): what was near stays near
    upper = torch.triu(torch.ones(len(words), len(words), dtype=torch.bool), 1)
    d_in, d_out = torch.cdist(x, x)[upper], torch.cdist(y, y)[upper]
    assert torch.corrcoef(torch.stack([d_in, d_out]))[0, 1] > 0.9
    with pytest.raises(ValueError, match="needs texts with words"):
        reading.match_scale(emb, conductor.tokenizer, ["?!"])


def test_stage_1_trains_a_reading_that_resumes_exactly_and_ships(tmp_path_factory, tmp_path):
    world = micro_world(tmp_path_factory)

    def cfg(out, **kw):
        return TrainConfig("conductor", world, out, steps=4, batch_size=2, lr=2e-3, threads=1,
                           checkpoint_every=2, progress=False, val_samples=2,
                           conductor_reading="words", **kw)  # fmt: skip

    straight = train_main(cfg(tmp_path / "a"))
    train_main(cfg(tmp_path / "b", stop_after=3))
    pieces = train_main(cfg(tmp_path / "b"))
    wa = load_file(str(straight.loop.checkpoint / "model.safetensors"))
    wb = load_file(str(pieces.loop.checkpoint / "model.safetensors"))
    assert "reading.proj.weight" in wa  # the reading trains and is checkpointed
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    loaded = ThinkerConductor.from_pretrained(straight.model)
    assert torch.equal(loaded.reading.proj.weight, wa["reading.proj.weight"])
    fresh = WordReading(WordReadingConfig(hidden_size=loaded.reading.config.hidden_size))
    assert not torch.equal(loaded.reading.proj.weight, fresh.proj.weight)
    # a run with the reading is another run than one without
    with pytest.raises(ValueError, match="conductor_reading"):
        train_main(TrainConfig("conductor", world, tmp_path / "b", steps=4, batch_size=2,
                               lr=2e-3, threads=1, checkpoint_every=2, progress=False,
                               val_samples=2))  # fmt: skip
    with pytest.raises(ValueError, match="conductor stage only"):
        TrainConfig("creator-joint", world, tmp_path / "c", conductor_reading="words")
    with pytest.raises(ValueError, match="off or words"):
        TrainConfig("conductor", world, tmp_path / "c", conductor_reading="letters")
