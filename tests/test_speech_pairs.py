"""Generated speech for the Creator's audio stages: many texts, non-test voices, no video."""

import torch
from micro_world import PRESET, micro_world, one_torch_thread

from mavid.creator.model import CreatorModel
from mavid.data.dialogue import voice_pool
from mavid.data.domain import INTENTS, paraphrase_split
from mavid.data.visitor_turns import train_voices
from mavid.train.data import iter_samples
from mavid.train.speech_pairs import SpeechConfig, speech_pairs, speech_texts
from mavid.train.stage3 import CreatorJointTask


def test_the_texts_cover_answers_questions_and_english_but_no_test_question():
    texts = speech_texts()
    assert "Hello and welcome to the museum." in texts  # an answer's first sentence
    assert "What is your name?" in texts  # the English corpus
    held_out = {p for i in INTENTS for k, p in enumerate(i.paraphrases)
                if paraphrase_split(i, k) == "test"}  # fmt: skip
    assert not held_out & set(texts)
    assert not any("<" in t for t in texts) and len(texts) == len(set(texts))


def test_the_pool_is_clip_pairs_of_speech_with_tracks_and_words():
    with one_torch_thread():
        model = CreatorModel.random(PRESET, 0)
        a = speech_pairs(model, SpeechConfig(utterances=5), seed=3, progress=False)
        b = speech_pairs(model, SpeechConfig(utterances=5), seed=3, progress=False)
    k = PRESET.media.num_codebooks
    spoken = []
    for key, pairs in a.items():
        assert len(b[key]) == len(pairs)
        for p, q in zip(pairs, b[key], strict=True):
            assert torch.equal(p.cur_codes, q.cur_codes) and p.speech == q.speech  # pure
            assert p.cur_codes.shape == (k, key[1]) and p.cur_latents is None
            assert p.cur_phones.shape == (key[1], 2)
            assert (p.prev_codes is None) == (key[0] == 0)
            spoken.append(p.speech)
    assert any(spoken) and sum(len(v) for v in a.values()) >= 5
    # the voices it draws from: never a held-out one
    held_out = set(voice_pool("test", "avatar")) | set(voice_pool("test", "user"))
    assert train_voices() and held_out.isdisjoint(train_voices())


def test_stage_3_mixes_audio_only_steps_on_generated_speech(tmp_path_factory):
    world = micro_world(tmp_path_factory)
    with one_torch_thread():
        task = CreatorJointTask(CreatorModel.random(PRESET, 0), iter_samples(world), 2, 0,
                                speech=SpeechConfig(utterances=4), speech_share=0.5)  # fmt: skip
        kinds = [task.batch(s).cur_latents.numel() == 0 for s in range(12)]
        assert any(kinds) and not all(kinds)
        opt = torch.optim.AdamW(task.trainable(), lr=1e-3)
        step = kinds.index(True)
        video_before = [p.clone() for p in task.model.video.parameters()]
        out = task.train_step(task.batch(step), opt, 1.0, step)
        assert set(out) == {"loss", "l_ar_speech", "grad_norm"}
        # an audio-only step leaves the DiT as it was
        assert all(
            torch.equal(a, b)
            for a, b in zip(video_before, task.model.video.parameters(), strict=True)
        )
        joint = task.train_step(task.batch(kinds.index(False)), opt, 1.0, kinds.index(False))
        assert {"l_ar", "l_diff"} <= joint.keys()
