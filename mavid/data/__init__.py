"""The synthetic audio-visual world: speech (espeak-ng), drawn faces, ambience, a museum
front-desk dialogue domain, and its sharded storage.

Entry points: `mavid.data.build.build_world(WorldConfig(...))` writes the shards + manifest,
`mavid.data.shards.WorldDataset(root, split)` reads them back, and
`mavid.data.domain.domain_corpus()` lists every text of the domain.
"""
