# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""InternVideo2 vision tower + attention pooling: ours against the original class re-stated in plain torch, and the
throughput of `videochat embed`, in one run.

1. Tower: the original `InternVideo2` (single_modality/models/internvideo2.py, pure-PyTorch branch: RMSNorm in fp32,
   naive softmax attention with q/k RMSNorm over the full width, LayerScale forced to fp32, exact GELU MLP, mean-query
   `clip_projector`) is re-stated below with the original module names. Its random state dict goes through OUR key
   map into `InternVideo2Model`; both run the same clip (medium config by default: 512 wide, 8 blocks, 8 frames at
   224 px = 2049 tokens). Reported: median time ours / original over interleaved repeats, max abs diff of the tokens
   and of the pooled embedding.
2. `videochat embed`: 16 generated H.264 clips (PyAV, libx264), the same medium model saved as a converted folder,
   then `videochat embed` end to end (decode, sample, resize, normalise, forward, write). Reported: embeddings per
   second with and without the model load.

    python bench/bench_internvideo2.py [--hidden 512 --layers 8 --frames 8 --image-size 224 --repeats 3]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from videochat import InternVideo2Model, InternVideo2VisionConfig
from videochat.cli import main as videochat_main
from videochat.convert.key_maps.internvideo2 import INTERNVIDEO2_FEATURES_KEY_MAP
from videochat.convert.keymap import convert_state_dict
from videochat.image_processing_internvideo2 import InternVideo2ImageProcessor


# ---------------------------------------------------------------------------------------------------------------------
# The original class, re-stated (module names as in the original so its state dict has the original keys)
# ---------------------------------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)).to(dtype)


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(1e-5 * torch.ones(dim))

    def forward(self, x):
        return (x.float() * self.gamma.float()).to(x.dtype)  # force_fp32 (layerscale_no_force_fp32=False)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.q_norm, self.k_norm = RMSNorm(dim), RMSNorm(dim)

    def forward(self, x):
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        q = self.q_norm(q.transpose(1, 2).flatten(-2, -1)).view(batch, tokens, self.heads, -1).transpose(1, 2)
        k = self.k_norm(k.transpose(1, 2).flatten(-2, -1)).view(batch, tokens, self.heads, -1).transpose(1, 2)
        attention = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_hidden: int):
        super().__init__()
        self.norm1, self.attn, self.ls1 = RMSNorm(dim), Attention(dim, heads), LayerScale(dim)
        self.norm2, self.mlp, self.ls2 = RMSNorm(dim), Mlp(dim, mlp_hidden), LayerScale(dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int, out_dim: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.q_bias, self.k_bias, self.v_bias = (nn.Parameter(torch.zeros(dim)) for _ in range(3))
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, x, k, v):
        batch, n, dim = x.shape
        q = F.linear(x, self.q.weight, self.q_bias).reshape(batch, n, self.heads, -1).transpose(1, 2)
        k = F.linear(k, self.k.weight, self.k_bias).reshape(batch, k.shape[1], self.heads, -1).transpose(1, 2)
        v = F.linear(v, self.v.weight, self.v_bias).reshape(batch, v.shape[1], self.heads, -1).transpose(1, 2)
        attention = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(batch, n, -1))


class AttentionPoolingBlock(nn.Module):
    def __init__(self, dim: int, heads: int, out_dim: int):
        super().__init__()
        self.norm1_q, self.norm1_k, self.norm1_v = (nn.LayerNorm(dim, eps=1e-5) for _ in range(3))
        self.cross_attn = CrossAttention(dim, heads, out_dim)

    def forward(self, x):
        query = self.norm1_q(x.mean(1, keepdim=True))
        return self.cross_attn(query, self.norm1_k(x), self.norm1_v(x)).squeeze(1)


class OriginalInternVideo2(nn.Module):
    def __init__(self, dim, depth, heads, mlp_hidden, frames, image_size, pool_heads=16, clip_embed_dim=768):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(3, dim, kernel_size=(1, 14, 14), stride=(1, 14, 14))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + frames * (image_size // 14) ** 2, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_hidden) for _ in range(depth)])
        self.clip_projector = AttentionPoolingBlock(dim, pool_heads, clip_embed_dim)

    def forward(self, x):  # [B, C, T, H, W]
        x = self.patch_embed.proj(x.to(self.patch_embed.proj.weight.dtype))
        x = x.flatten(3).permute(0, 2, 3, 1)
        batch, frames, patches, dim = x.shape
        x = (
            torch.cat([self.cls_token.expand(batch, -1, -1), x.reshape(batch, frames * patches, dim)], 1)
            + self.pos_embed
        )
        for block in self.blocks:
            x = block(x)
        return x, self.clip_projector(x)


# ---------------------------------------------------------------------------------------------------------------------


def build_models(hidden: int, layers: int, frames: int, image_size: int):
    heads, mlp_hidden = hidden // 64, int(hidden * 48 / 11)
    torch.manual_seed(0)
    original = OriginalInternVideo2(hidden, layers, heads, mlp_hidden, frames, image_size)
    with torch.no_grad():
        for name, parameter in original.named_parameters():
            if "norm" in name or name.endswith("gamma"):
                parameter.copy_(
                    1.0 + 0.1 * torch.randn_like(parameter)
                    if "norm" in name
                    else 0.5 + 0.1 * torch.randn_like(parameter)
                )
            elif parameter.ndim == 1 or name in ("cls_token", "pos_embed"):
                parameter.normal_(0, 0.1)
            else:
                parameter.normal_(0, parameter.shape[1] ** -0.5 if parameter.ndim == 2 else 0.05)
    config = InternVideo2VisionConfig(
        hidden_size=hidden,
        intermediate_size=mlp_hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        image_size=image_size,
        num_frames=frames,
    )
    state_dict, _ = convert_state_dict(INTERNVIDEO2_FEATURES_KEY_MAP, original.state_dict())
    ours = InternVideo2Model.from_pretrained(None, config=config, state_dict=state_dict)
    return original.eval(), ours.eval()


def time_models(original, ours, clip: torch.Tensor, repeats: int) -> dict:
    times = {"original": [], "ours": []}
    with torch.no_grad():
        original(clip.transpose(1, 2)), ours(clip)  # warm-up
        for _ in range(repeats):
            for name in ("original", "ours"):
                start = time.perf_counter()
                if name == "original":
                    reference = original(clip.transpose(1, 2))
                else:
                    outputs = ours(clip)
                times[name].append(time.perf_counter() - start)
    return {
        "original_s": statistics.median(times["original"]),
        "ours_s": statistics.median(times["ours"]),
        "tokens_max_abs_diff": (outputs.last_hidden_state - reference[0]).abs().max().item(),
        "pooled_max_abs_diff": (outputs.pooler_output - reference[1]).abs().max().item(),
    }


def write_clips(folder: Path, count: int, num_frames: int = 64, width: int = 320, height: int = 240) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"clip{index:02d}.mp4"
        background = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for frame_index in range(num_frames):
                frame = np.roll(background, 4 * frame_index, axis=1)
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        paths.append(path)
    return paths


def bench_embed(ours: InternVideo2Model, workdir: Path, num_clips: int, batch_size: int) -> dict:
    folder = workdir / "model"
    ours.save_pretrained(folder)
    InternVideo2ImageProcessor(
        num_frames=ours.config.num_frames,
        size={"shortest_edge": ours.config.image_size},
        crop_size={"height": ours.config.image_size, "width": ours.config.image_size},
    ).save_pretrained(folder)
    videos = workdir / "videos"
    videos.mkdir()
    write_clips(videos, num_clips)
    from videochat.cli.embed import embed_videos, load_embedding_model

    start = time.perf_counter()
    assert (
        videochat_main(
            [
                "embed",
                str(videos),
                "--model",
                str(folder),
                "--output",
                str(workdir / "e.safetensors"),
                "--batch-size",
                str(batch_size),
                "--no-progress",
            ]
        )
        == 0
    )
    total = time.perf_counter() - start
    model, processor = load_embedding_model(folder)
    start = time.perf_counter()
    embeddings, _, _ = embed_videos(model, processor, sorted(videos.iterdir()), batch_size, progress=False)
    steady = time.perf_counter() - start
    assert embeddings.shape[0] == num_clips
    return {"with_load_per_s": num_clips / total, "steady_per_s": num_clips / steady}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args(argv)
    original, ours = build_models(args.hidden, args.layers, args.frames, args.image_size)
    clip = torch.randn(1, args.frames, 3, args.image_size, args.image_size, generator=torch.Generator().manual_seed(1))
    tower = time_models(original, ours, clip, args.repeats)
    print(
        f"tower+pooling: hidden={args.hidden} layers={args.layers} frames={args.frames} size={args.image_size} "
        f"tokens={ours.config.num_frames * (args.image_size // 14) ** 2 + 1} threads={torch.get_num_threads()}"
    )
    print(
        f"  median s/clip: ours {tower['ours_s']:.3f}  original re-stated {tower['original_s']:.3f}  "
        f"ratio ours/original {tower['ours_s'] / tower['original_s']:.3f}"
    )
    print(f"  max abs diff: tokens {tower['tokens_max_abs_diff']:.3e}  pooled {tower['pooled_max_abs_diff']:.3e}")
    with tempfile.TemporaryDirectory() as workdir:
        embed = bench_embed(ours, Path(workdir), args.clips, args.batch_size)
    print(
        f"videochat embed on {args.clips} generated H.264 clips (320x240, 64 frames): "
        f"{embed['steady_per_s']:.2f} embeddings/s (model loaded), {embed['with_load_per_s']:.2f}/s end to end"
    )


if __name__ == "__main__":
    main()
