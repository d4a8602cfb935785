"""Meters for audio, video, audio-video and the Conductor, and the ground-truth reference report.

`wer` (PocketSphinx + jiwer), `lipsync` (SyncNet-style offset/confidence), `consistency`
(subject consistency, dynamic degree), `timbre` (resemblyzer), `conductor` (intent accuracy,
directive format) and `report` (`reference_main(EvalConfig(...))`).
"""
