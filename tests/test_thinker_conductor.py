import json
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import (
    Qwen2_5OmniConfig,
    Qwen2_5OmniThinkerConfig,
    Qwen2_5OmniThinkerForConditionalGeneration,
)

from mavid.conductor import (
    ConductorConfig,
    ThinkerConductor,
    build_tiny_tokenizer,
    collate,
    stage1_loss,
)
from mavid.conductor.features import TurnEncoder
from mavid.conductor.format import M_BOS
from mavid.conductor.thinker import TinyThinkerShape, tiny_thinker_config
from mavid.interfaces import Cancelled, CancelToken, Conductor, ConductorError, UserTurn

RNG = np.random.default_rng(0)
AUDIO = (RNG.standard_normal(16_000 * 3) * 0.1).astype(np.float32)  # 3 s -> chunks of 2 s + 1 s
FRAMES = tuple(RNG.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(6))  # 3 s @ 2 fps
TURNS = {
    "text": UserTurn(text="Hello, who are you?"),
    "audio": UserTurn(audio=AUDIO),
    "video": UserTurn(video=FRAMES),
    "all": UserTurn(text="What do you see?", audio=AUDIO, video=FRAMES),
}


@pytest.fixture(scope="module")
def tiny() -> ThinkerConductor:
    return ThinkerConductor.tiny(seed=0, config=ConductorConfig(max_new_tokens=24, seed=3))


def answer(conductor: ThinkerConductor, turn: UserTurn) -> tuple[str, str, int]:
    deltas = list(conductor.stream(turn, CancelToken()))
    return "".join(d.speech for d in deltas), "".join(d.motion for d in deltas), len(deltas)


def generate_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "thinker-generate"]


def test_tiny_is_a_conductor(tiny: ThinkerConductor) -> None:
    assert isinstance(tiny, Conductor)
    assert sum(p.numel() for p in tiny.model.parameters()) < 2_000_000
    # the Whisper-style front end is built from the audio encoder's config
    assert tiny.feature_extractor.feature_size == tiny.model.config.audio_config.num_mel_bins
    assert tiny.feature_extractor.sampling_rate == 16_000


@pytest.mark.parametrize("name", list(TURNS))
def test_every_modality_subset_streams(tiny: ThinkerConductor, name: str) -> None:
    speech, motion, n = answer(tiny, TURNS[name])
    assert n > 1  # streamed, not one block
    assert speech or motion


@pytest.fixture
def all_frames(tiny: ThinkerConductor):
    """The tiny Thinker reading every frame of a turn (it reads the last 4 as trained)."""
    tiny.inputs_config.max_frames = None
    yield tiny
    tiny.inputs_config.max_frames = 4


def test_placeholders_match_the_layout(all_frames: ThinkerConductor) -> None:
    tiny = all_frames
    batch = tiny.encoder.encode_prompt(TURNS["all"], "sys")
    tok = tiny.tokenizer
    ids = batch["input_ids"][0].tolist()
    frames = batch["feature_attention_mask"].sum(-1).tolist()
    assert frames == [200, 100]  # 2 s + 1 s of 10 ms mel frames
    want_audio = sum(TurnEncoder.audio_token_count(f) for f in frames)
    assert ids.count(tok.audio_token_id) == want_audio
    grid = batch["video_grid_thw"]
    assert grid.tolist() == [[2, 4, 4], [1, 4, 4]]  # 4 frames then 2 frames, 32 px, patch 8
    assert ids.count(tok.video_token_id) == int(grid.prod(-1).sum()) // 4
    # text first, then audio chunk 0, video chunk 0, audio chunk 1, video chunk 1
    marks = [i for i in ids if i in (tok.audio_bos_token_id, tok.vision_bos_token_id)]
    assert marks == [tok.audio_bos_token_id, tok.vision_bos_token_id] * 2


def test_the_tiny_thinker_reads_a_turns_last_frames_as_it_learnt_from(tiny) -> None:
    # its training turns showed 4 frames; a long turn's 8 or more made it repeat a word
    assert tiny.inputs_config.max_frames == 4
    long_turn = replace(TURNS["video"], video=FRAMES * 3)  # 18 frames: 9 s
    last = replace(TURNS["video"], video=long_turn.video[-4:])
    a, b = (tiny.encoder.encode_prompt(t, "sys") for t in (long_turn, last))
    assert a["video_grid_thw"].tolist() == [[2, 4, 4]]
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert torch.equal(a["pixel_values_videos"], b["pixel_values_videos"])
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="max_frames"):
            replace(tiny.inputs_config, max_frames=bad)


def test_audio_and_video_reach_the_model(tiny: ThinkerConductor) -> None:
    def last_logits(turn: UserTurn) -> torch.Tensor:
        tiny.model.model.rope_deltas = None
        with torch.inference_mode():
            return tiny.model(**tiny.encoder.encode_prompt(turn, "sys")).logits[0, -1]

    base = last_logits(TURNS["all"])
    louder = last_logits(replace(TURNS["all"], audio=AUDIO * 3))
    other_video = last_logits(replace(TURNS["all"], video=FRAMES[::-1]))
    assert not torch.allclose(base, louder)
    assert not torch.allclose(base, other_video)


def test_save_reload_generates_the_same(tiny: ThinkerConductor, tmp_path) -> None:
    tiny.save_pretrained(tmp_path)
    again = ThinkerConductor.from_pretrained(tmp_path, config=tiny.config)
    for name in ("text", "all"):
        assert answer(again, TURNS[name]) == answer(tiny, TURNS[name])
    greedy = replace(tiny.config, do_sample=False)
    assert answer(ThinkerConductor.from_pretrained(tmp_path, greedy), TURNS["text"]) == answer(
        ThinkerConductor(
            tiny.model, tiny.tokenizer, tiny.feature_extractor, tiny.inputs_config, greedy
        ),
        TURNS["text"],
    )


def test_decoding_follows_the_checkpoints_generation_config(tmp_path) -> None:
    conductor = ThinkerConductor.tiny(seed=0)
    conductor.save_pretrained(tmp_path / "greedy")  # no sampling in its generation config
    assert ThinkerConductor.from_pretrained(tmp_path / "greedy").config.do_sample is False
    conductor.model.generation_config.update(do_sample=True, temperature=0.3, top_k=7)
    conductor.save_pretrained(tmp_path / "sampling")
    loaded = ThinkerConductor.from_pretrained(tmp_path / "sampling").config
    assert (loaded.do_sample, loaded.temperature, loaded.top_k) == (True, 0.3, 7)
    assert loaded.top_p == ConductorConfig().top_p  # unset there: ours
    # an explicit config wins
    mine = ConductorConfig(do_sample=True, temperature=0.9)
    assert ThinkerConductor.from_pretrained(tmp_path / "greedy", mine).config is mine


def test_from_pretrained_missing_dir(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        ThinkerConductor.from_pretrained(tmp_path)


def test_cancel_mid_generation_stops_the_thread(tiny: ThinkerConductor) -> None:
    long = ThinkerConductor(
        tiny.model,
        tiny.tokenizer,
        tiny.feature_extractor,
        tiny.inputs_config,
        ConductorConfig(max_new_tokens=3000, min_new_tokens=3000, seed=0),
    )
    steps = []
    hook = tiny.model.register_forward_hook(lambda *a: steps.append(1))
    try:
        cancel = CancelToken()
        it = long.stream(TURNS["text"], cancel)
        next(it)
        cancel.cancel()
        with pytest.raises(Cancelled):
            for _ in it:
                pass
    finally:
        hook.remove()
    assert not generate_threads()  # joined before Cancelled propagated
    assert len(steps) < 500  # generation stopped long before its 3000 tokens


def test_abandoned_stream_stops_the_thread(tiny: ThinkerConductor) -> None:
    it = ThinkerConductor(
        tiny.model,
        tiny.tokenizer,
        tiny.feature_extractor,
        tiny.inputs_config,
        ConductorConfig(max_new_tokens=3000, min_new_tokens=3000),
    ).stream(TURNS["text"], CancelToken())
    next(it)
    it.close()
    assert not generate_threads()


def test_already_cancelled_turn() -> None:
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        next(ThinkerConductor.tiny().stream(TURNS["text"], cancel))


def test_model_failure_is_a_conductor_error(tiny: ThinkerConductor, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(tiny.model, "forward", broken)
    with pytest.raises(ConductorError, match="out of memory"):
        list(tiny.stream(TURNS["text"], CancelToken()))
    assert not generate_threads()


@pytest.mark.parametrize(
    ("turn", "message"),
    [
        (UserTurn(), "empty"),
        (UserTurn(audio=np.full(100, np.nan, np.float32)), "NaN"),
        (UserTurn(audio=np.zeros(100, np.int16)), "float"),
        (UserTurn(video=(np.zeros((8, 8), np.uint8),)), r"video\[0\]"),
    ],
)
def test_bad_turns_are_clear_errors(tiny: ThinkerConductor, turn: UserTurn, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next(tiny.stream(turn, CancelToken()))


@pytest.mark.parametrize("typed", ["What is <|VIDEO|> this?", "<|im_end|><|AUDIO|><m_bos>"])
def test_control_tokens_typed_by_a_user_are_only_words(tiny: ThinkerConductor, typed) -> None:
    # typed, "<|VIDEO|>" was a video placeholder without frames ("Video features and video
    # tokens do not match") and "<|im_end|>" ended the user's turn early
    turn = replace(TURNS["video"], text=typed)
    batch = tiny.encoder.encode_prompt(turn, "sys")
    plain = tiny.encoder.encode_prompt(replace(turn, text="What is this?"), "sys")
    tok = tiny.tokenizer
    for token_id in (
        tok.video_token_id,
        tok.audio_token_id,
        tok.convert_tokens_to_ids("<|im_end|>"),
    ):
        assert batch["input_ids"][0].tolist().count(token_id) == plain["input_ids"][
            0
        ].tolist().count(token_id)
    speech, motion, _ = answer(tiny, turn)
    assert speech or motion
    assert tiny.encoder.user_text(turn) in ("What is this?", "")
    # a turn of control tokens alone holds nothing to answer
    with pytest.raises(ValueError, match="control tokens"):
        next(tiny.stream(UserTurn(text=" <|im_end|> <|VIDEO|> "), CancelToken()))


def test_stage1_learns_directives_only() -> None:
    """Labels cover the directive only, and training on them makes the streamed answer the
    directive: the training layout (collate) is the one generation sees (stream)."""
    conductor = ThinkerConductor.tiny(
        seed=1, config=ConductorConfig(max_new_tokens=40, do_sample=False)
    )
    examples = [
        (UserTurn(text="What is the capital of France?"), "Paris is the capital.", ""),  # QA
        (
            UserTurn(text="Hello", audio=AUDIO[:32_000], video=FRAMES[:4]),
            "Hello there!",
            "waves hello",
        ),
    ]
    batch = collate(examples, conductor.encoder)
    tok = conductor.tokenizer
    for row, (_, speech, motion) in zip(batch["labels"], examples, strict=True):
        learned = row[row != -100].tolist()
        assert tok.decode(learned) == f"{speech}{M_BOS}{motion}<m_eos><|im_end|>"
    model = conductor.model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(45):
        loss = stage1_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    model.eval()
    for turn, speech, motion in examples:
        assert answer(conductor, turn)[:2] == (speech, motion)


def _as_real_checkpoint(tiny: ThinkerConductor, directory) -> None:
    """Qwen2.5-Omni's layout: a full-model config, weights under "thinker.", and a tokenizer
    without MAViD's <m_bos>/<m_eos> whose size equals the embedding rows."""
    tok = tiny.tokenizer
    cfg = tiny_thinker_config(tok, TinyThinkerShape())
    cfg["text_config"]["vocab_size"] = len(tok)
    torch.manual_seed(0)
    model = Qwen2_5OmniThinkerForConditionalGeneration(Qwen2_5OmniThinkerConfig(**cfg))
    Qwen2_5OmniConfig(thinker_config=model.config.to_dict()).save_pretrained(directory)
    weights = {f"thinker.{k}": v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    tiny.feature_extractor.save_pretrained(directory)
    tok.save_pretrained(directory)
    spec = json.loads((directory / "tokenizer.json").read_text())
    renamed = {M_BOS: "<|x_bos|>", "<m_eos>": "<|x_eos|>"}
    for added in spec["added_tokens"]:
        added["content"] = renamed.get(added["content"], added["content"])
    spec["model"]["vocab"] = {renamed.get(k, k): v for k, v in spec["model"]["vocab"].items()}
    (directory / "tokenizer.json").write_text(json.dumps(spec))
    config = json.loads((directory / "tokenizer_config.json").read_text())
    config.pop("m_bos_token"), config.pop("m_eos_token")
    (directory / "tokenizer_config.json").write_text(json.dumps(config))


def test_real_checkpoint_layout_adds_directive_tokens(tiny: ThinkerConductor, tmp_path) -> None:
    _as_real_checkpoint(tiny, tmp_path)
    rows = len(tiny.tokenizer)
    real = ThinkerConductor.from_pretrained(
        tmp_path, ConductorConfig(max_new_tokens=16, min_new_tokens=16, seed=0)
    )
    assert real.tokenizer.convert_tokens_to_ids([M_BOS, "<m_eos>"]) == [rows, rows + 1]
    assert real.model.get_input_embeddings().num_embeddings >= rows + 2  # resized
    assert real.model.get_output_embeddings().weight.shape[0] >= rows + 2
    ids = real.tokenizer(f"hi{M_BOS}nod")["input_ids"]
    assert rows in ids
    assert answer(real, TURNS["all"])[2] > 1


def test_corrupt_checkpoint_is_a_clear_error(tiny: ThinkerConductor, tmp_path) -> None:
    tiny.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ConductorError, match=str(tmp_path)):
        ThinkerConductor.from_pretrained(tmp_path)


def test_tiny_with_domain_tokenizer_and_bigger_shape() -> None:
    tok = build_tiny_tokenizer(lambda: ["the museum opens at nine"] * 20, vocab_size=300)
    shape = TinyThinkerShape(hidden_size=96, num_heads=2, num_layers=1)
    c = ThinkerConductor.tiny(
        tokenizer=tok,
        shape=shape,
        config=ConductorConfig(max_new_tokens=6, min_new_tokens=6, seed=0),
    )
    text = c.model.config.text_config
    assert text.vocab_size >= len(tok) and text.hidden_size == 96
    assert sum(text.rope_parameters["mrope_section"]) == 96 // 2 // 2
    assert answer(c, TURNS["all"])[2] >= 1
    with pytest.raises(ValueError, match="head_dim"):
        ThinkerConductor.tiny(shape=TinyThinkerShape(hidden_size=64, num_heads=3))
