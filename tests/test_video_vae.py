import pytest
import torch

from mavid.codecs.video_vae import TinyVideoVAE, VideoVAE, WanVideoVAE, build_video_vae, num_latents
from mavid.config import MICRO, TINY, VideoVAEConfig


def test_tiny_vae_shapes_follow_wan():
    torch.manual_seed(0)
    vae = TinyVideoVAE(TINY.video_vae).eval()
    assert isinstance(vae, VideoVAE)
    video = torch.rand(1, 3, 25, 128, 128) * 2 - 1
    with torch.inference_mode():
        z = vae.encode(video)
        assert z.shape == (1, 16, 7, 16, 16)  # 1 + 4k frames -> 1 + k latents, 8x spatial
        out = vae.decode(z)
    assert out.shape == video.shape
    assert out.abs().max() <= 1.0


def test_latent_0_is_frame_0_alone_and_latents_are_independent_in_time():
    vae = TinyVideoVAE(MICRO.video_vae).eval()
    video = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    changed = video.clone()
    changed[:, :, 5:9] = -changed[:, :, 5:9]  # frames of latent 2 only
    with torch.inference_mode():
        z, z2 = vae.encode(video), vae.encode(changed)
        assert torch.equal(z[:, :, :2], z2[:, :, :2]) and not torch.equal(z[:, :, 2], z2[:, :, 2])
        d, d2 = vae.decode(z), vae.decode(z2)
    assert torch.equal(d[:, :, :5], d2[:, :, :5]) and not torch.equal(d[:, :, 5:], d2[:, :, 5:])


def test_bad_frame_count_and_config():
    vae = TinyVideoVAE(MICRO.video_vae)
    with pytest.raises(ValueError, match="1 \\+ 4k frames"):
        vae.encode(torch.zeros(1, 3, 8, 32, 32))
    assert num_latents(13) == 4
    with pytest.raises(ValueError, match="widths"):
        TinyVideoVAE(VideoVAEConfig(channels=(8, 8)))
    with pytest.raises(ValueError, match="from a checkpoint"):
        build_video_vae(VideoVAEConfig(kind="wan"))


def test_reconstruction_loss_trains():
    torch.manual_seed(0)
    vae = TinyVideoVAE(MICRO.video_vae)
    video = torch.rand(2, 3, 5, 32, 32) * 2 - 1
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        out = vae.reconstruction_loss(video)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < losses[0]


def test_wan_vae_loads_from_a_local_directory(tmp_path):
    from diffusers import AutoencoderKLWan

    with pytest.raises(FileNotFoundError, match="AutoencoderKLWan"):
        WanVideoVAE.from_pretrained(tmp_path / "missing")
    torch.manual_seed(0)
    AutoencoderKLWan(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        latents_mean=[0.1, -0.2, 0.3, 0.0],
        latents_std=[1.5, 0.5, 2.0, 1.0],
    ).save_pretrained(tmp_path)
    vae = WanVideoVAE.from_pretrained(tmp_path)
    assert isinstance(vae, VideoVAE)
    assert (vae.z_dim, vae.temporal_compression, vae.spatial_compression) == (4, 4, 8)
    video = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    z = vae.encode(video)
    assert z.shape == (1, 4, 2, 2, 2)
    assert vae.decode(z).shape == video.shape
