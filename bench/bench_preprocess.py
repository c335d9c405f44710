# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
Benchmark: decode 8 frames + InternVideo2-Chat-8B-HD preprocessing, ours vs three references.

Generates three H.264 files in a temporary folder (30 fps; `--quick`: a tenth of the length): 1280x720 60 s and
1920x1080 20 s with GOP 250 and x264's default B-frames, and 1280x720 60 s with GOP 30 and no B-frames (a key frame
every second, as cameras and streaming encoders write them), and times, per file:

* `ours`: `videochat.video_utils_videochat.load_video` (PyAV) + `VideoChatImageProcessor` (HD preset);
* `(a) model card`: the InternVideo2-Chat-8B-HD model card's `load_video` re-stated here (decord `num_threads=1`,
  `get_index`, `HD_transform_no_padding` with bicubic `F.interpolate`, `/255`, Normalize, tiles + global view);
* `(b) decord auto threads`: the same with decord `num_threads=0`;
* `(c) transformers load_video(backend="pyav")` with the same indices, then the same HD transform.

All four must produce bit-identical decoded frames and pixel tensors (asserted). After one untimed warm-up call
each, the candidates are timed in interleaved rounds; prints the median wall time and the median CPU time (all
threads of the process) of `--repeats` rounds and the ratios reference / ours for both: ours decodes with two
threads, the model card with one, so the wall-time ratio credits ours with a second core and the CPU-time ratio
does not.

    python bench/bench_preprocess.py [--quick] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from videochat.convert.presets import build_image_processor
from videochat.image_processing_pil_videochat import VideoChatImageProcessor
from videochat.video_utils_videochat import load_video


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def write_test_video(
    path: str, width: int, height: int, seconds: float, fps: int = 30, gop: int = 250, b_frames: bool = True
) -> None:
    """Moving gradients and a moving square, H.264 yuv420p, `gop` frames between key frames, with x264's default
    B-frames or none."""
    import av

    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "veryfast", "keyint": str(gop), "min-keyint": str(gop), "scenecut": "0"}
        if not b_frames:
            stream.codec_context.max_b_frames = 0
        yy, xx = np.mgrid[0:height, 0:width].astype(np.int32)
        base = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 255 // (width + height)], -1)
        for index in range(int(seconds * fps)):
            image = ((base + index * np.array([2, 3, 5])) % 256).astype(np.uint8)
            top, left = (index * 7) % (height - 64), (index * 11) % (width - 64)
            image[top : top + 64, left : left + 64] = (255, 255 - index % 256, index % 256)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# ------------------------------------------------------------------------------------------------ reference (a)
# The model card's pipeline, re-stated (no torchvision: Normalize is written out with the same tensor ops).


def card_get_index(num_frames: int, num_segments: int) -> np.ndarray:
    seg_size = float(num_frames - 1) / num_segments
    start = int(seg_size / 2)
    return np.array([start + int(np.round(seg_size * idx)) for idx in range(num_segments)])


def card_hd_transform(frames: torch.Tensor, image_size: int = 224) -> torch.Tensor:
    # HD_transform_no_padding with its default fix_ratio=(2, 1): every video becomes 224 x 448.
    frames = F.interpolate(frames, size=(image_size, 2 * image_size), mode="bicubic", align_corners=False)
    frames = frames.float().div(255.0)
    mean = torch.as_tensor(IMAGENET_MEAN).view(-1, 1, 1)
    std = torch.as_tensor(IMAGENET_STD).view(-1, 1, 1)
    frames = frames.sub_(mean).div_(std)
    num_frames, channels, height, width = frames.shape
    tiles = frames.reshape(1, num_frames, channels, height // image_size, image_size, width // image_size, image_size)
    tiles = tiles.permute(0, 3, 5, 1, 2, 4, 6).reshape(-1, num_frames, channels, image_size, image_size)
    global_view = F.interpolate(frames, size=(image_size, image_size), mode="bicubic", align_corners=False)
    return torch.cat([tiles, global_view.unsqueeze(0)])


def card_load_video(path: str, num_segments: int = 8, num_threads: int = 1):
    from decord import VideoReader, cpu

    reader = VideoReader(path, ctx=cpu(0), num_threads=num_threads)
    indices = card_get_index(len(reader), num_segments)
    frames = reader.get_batch(indices).asnumpy()
    pixel_values = card_hd_transform(torch.from_numpy(frames).permute(0, 3, 1, 2).float())
    return frames, pixel_values


def transformers_load_video(path: str, num_segments: int = 8):
    from transformers.video_utils import load_video as hf_load_video

    def sample_indices_fn(metadata, **kwargs):
        return card_get_index(metadata.total_num_frames, num_segments)

    frames, _ = hf_load_video(path, backend="pyav", sample_indices_fn=sample_indices_fn)
    pixel_values = card_hd_transform(torch.from_numpy(np.asarray(frames)).permute(0, 3, 1, 2).float())
    return np.asarray(frames), pixel_values


def ours_load_video(path: str, processor: VideoChatImageProcessor, num_segments: int = 8):
    frames, _ = load_video(path, num_frames=num_segments)
    return frames, processor.preprocess_video_frames(frames)


def median_times(candidates: dict, repeats: int) -> dict:
    """
    One untimed warm-up call per candidate (imports, first-call allocations; its output is what gets compared),
    then `repeats` rounds that call every candidate once, so that a change in machine load hits all of them alike.
    Returns {label: (median wall seconds, median CPU seconds, output)}; CPU seconds count every thread of the process
    (decord's and FFmpeg's decoding threads included).
    """
    outputs = {label: function() for label, function in candidates.items()}
    wall = {label: [] for label in candidates}
    cpu = {label: [] for label in candidates}
    for _ in range(repeats):
        for label, function in candidates.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            function()
            wall[label].append(time.perf_counter() - start)
            cpu[label].append(time.process_time() - cpu_start)
    return {
        label: (statistics.median(wall[label]), statistics.median(cpu[label]), outputs[label]) for label in candidates
    }


def count_b_frames(path: str) -> int:
    """B-frames among the video's frames (decoded picture types)."""
    import av
    from av.video.frame import PictureType

    with av.open(path) as container:
        return sum(frame.pict_type == PictureType.B for frame in container.decode(video=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short clips (smoke test)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    processor = build_image_processor("internvideo2-chat-8b-hd")
    scale = 0.1 if args.quick else 1.0
    clips = [  # name, width, height, seconds, GOP, B-frames
        ("1280x720 GOP 250", 1280, 720, 60 * scale, 250, True),
        ("1920x1080 GOP 250", 1920, 1080, 20 * scale, 250, True),
        ("1280x720 GOP 30, no B-frames", 1280, 720, 60 * scale, 30, False),
    ]
    print(f"CPU cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, repeats: {args.repeats}")
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, width, height, seconds, gop, b_frames) in enumerate(clips):
            path = os.path.join(folder, f"clip{index}.mp4")
            start = time.perf_counter()
            write_test_video(path, width, height, seconds, gop=gop, b_frames=b_frames)
            print(
                f"\n{name}, {seconds:g} s: generated in {time.perf_counter() - start:.1f} s "
                f"({os.path.getsize(path) / 1e6:.1f} MB, {count_b_frames(path)} B-frames)"
            )

            candidates = {
                "ours (PyAV, videochat)": lambda path=path: ours_load_video(path, processor),
                "(a) model card, decord num_threads=1": lambda path=path: card_load_video(path, num_threads=1),
                "(b) decord auto threads": lambda path=path: card_load_video(path, num_threads=0),
                "(c) transformers load_video pyav": lambda path=path: transformers_load_video(path),
            }
            results = median_times(candidates, args.repeats)
            ours_wall, ours_cpu, (ours_frames, ours_pixels) = results["ours (PyAV, videochat)"]
            for label, (wall, cpu, (frames, pixels)) in results.items():
                assert np.array_equal(frames, ours_frames), f"{label}: decoded frames differ from ours"
                assert torch.equal(pixels, ours_pixels), f"{label}: pixel tensors differ from ours"
                print(
                    f"  {label:40s} wall {wall * 1000:8.1f} ms x{wall / ours_wall:5.2f} vs ours   "
                    f"CPU {cpu * 1000:8.1f} ms x{cpu / ours_cpu:5.2f} vs ours"
                )
            print(f"  frames bit-identical across all four; pixel_values {tuple(ours_pixels.shape)} identical")


if __name__ == "__main__":
    main()
