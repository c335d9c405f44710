# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`videochat embed VIDEO... --model DIR`: video embeddings of an InternVideo2 foundation model.

    videochat embed VIDEO_OR_FOLDER... --model DIR [--output FILE] [--batch-size N] [--no-normalize]
                    [--dtype D] [--device D] [--skip-errors]

VIDEO_OR_FOLDER: video files, or folders whose video files (by extension, sorted) are embedded. DIR: a converted
folder (`videochat convert`): a stage-2 model gives the projected video embedding of the shared
video-text space (what text-to-video retrieval compares), a stage-1 model its pooled embedding. Frames are sampled
and preprocessed with the folder's processor settings; clips with several views (temporal clips x crops) get the
mean of their views' embeddings. Embeddings are L2-normalised unless `--no-normalize`.

OUTPUT (written atomically): `.safetensors` (`embeddings` [N, D] float32, paths in the metadata), `.npz`
(`embeddings`, `paths`) or `.npy` (embeddings only, in the order of the embedded videos). It may not be an input or
lie inside the model folder; an existing OUTPUT is replaced only with `--overwrite` and only when `videochat embed`
wrote it.
"""

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoImageProcessor

from ..convert.output_safety import prepare_output_file, write_file_atomically
from ..modeling_internvideo2 import InternVideo2ForVideoClassification, InternVideo2Model, InternVideo2VideoTextModel
from .chat import looks_like_a_path
from .devices import check_device, default_device
from .errors import handles_errors, report_error


VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".gif")
OUTPUT_SUFFIXES = (".safetensors", ".npz", ".npy")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
WRITTEN_BY = "videochat embed"


def expand_videos(arguments: list[str]) -> list[Path]:
    """Video files named directly, plus the video files (by extension, sorted) of every folder named."""
    videos = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            videos.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS))
        elif path.is_file():
            videos.append(path)
        else:
            raise FileNotFoundError(f"no such video file or folder: {argument}")
    if not videos:
        raise ValueError(f"no video files found in {arguments}")
    return videos


def load_embedding_model(folder: str | Path, dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """The model of a converted folder that produces video embeddings, and its image processor."""
    if not Path(folder).expanduser().exists() and looks_like_a_path(str(folder)):
        raise FileNotFoundError(f"model folder not found: {folder}")
    config = AutoConfig.from_pretrained(folder)
    if config.model_type == "internvideo2":
        model = InternVideo2VideoTextModel.from_pretrained(folder, dtype=dtype)
    elif config.model_type == "internvideo2_vision" and "InternVideo2ForVideoClassification" in (
        config.architectures or []
    ):
        model = InternVideo2ForVideoClassification.from_pretrained(folder, dtype=dtype).internvideo2
    elif config.model_type == "internvideo2_vision":
        model = InternVideo2Model.from_pretrained(folder, dtype=dtype)
    else:
        raise ValueError(
            f"{folder} holds a {config.model_type!r} model; `videochat embed` needs an InternVideo2 model"
        )
    return model.to(device).eval(), AutoImageProcessor.from_pretrained(folder)


@torch.no_grad()
def embed_clips(model, pixel_values: torch.Tensor, num_views: int, normalize: bool) -> torch.Tensor:
    """`(videos * views, T, C, H, W)` -> `(videos, D)` float32: one embedding per view, averaged per video."""
    pixel_values = pixel_values.to(model.device, model.dtype)
    if isinstance(model, InternVideo2VideoTextModel):
        embeddings = model.get_video_features(pixel_values).pooler_output
    else:
        embeddings = model(pixel_values).pooler_output
    embeddings = embeddings.float().reshape(-1, num_views, embeddings.shape[-1]).mean(1)
    return F.normalize(embeddings, dim=-1) if normalize else embeddings


def _preprocess(image_processor, path: Path, skip_errors: bool):
    try:
        return image_processor(videos=str(path))["pixel_values"], None
    except (ValueError, FileNotFoundError) as error:
        if not skip_errors:
            raise ValueError(f"cannot embed {path}: {error}") from None
        return None, str(error)


def embed_videos(
    model,
    image_processor,
    videos: list[Path],
    batch_size: int = 8,
    normalize: bool = True,
    skip_errors: bool = False,
    progress: bool = True,
    decode_workers: int = 2,
):
    """Embeddings `(N, D)` of the videos that could be read, their paths and `{path: error}` of the skipped ones.
    Videos are decoded and preprocessed in `decode_workers` threads while the model runs."""
    embeddings, kept, skipped = [], [], {}
    num_views = image_processor.num_views
    with (
        ThreadPoolExecutor(max_workers=max(1, decode_workers)) as pool,
        tqdm(total=len(videos), unit="video", desc="embedding", disable=not progress) as bar,
    ):
        pending = [pool.submit(_preprocess, image_processor, path, skip_errors) for path in videos]
        for start in range(0, len(videos), batch_size):
            batch, paths = [], []
            for path, future in zip(videos[start : start + batch_size], pending[start : start + batch_size]):
                pixel_values, error = future.result()
                if error is not None:
                    skipped[str(path)] = error
                else:
                    batch.append(pixel_values)
                    paths.append(str(path))
            if batch:
                embeddings.append(embed_clips(model, torch.cat(batch), num_views, normalize))
                kept.extend(paths)
            bar.update(len(videos[start : start + batch_size]))
    result = torch.cat(embeddings) if embeddings else torch.empty(0, 0)
    return result, kept, skipped


def is_embedding_file(path: Path) -> bool:
    """Whether `path` is a file `videochat embed` wrote (only such a file is replaced with `--overwrite`):
    `.safetensors` with our metadata, `.npz` holding exactly `embeddings` and `paths`, or a 2-D float32 `.npy`."""
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="numpy") as handle:
                return (handle.metadata() or {}).get("written_by") == WRITTEN_BY
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return sorted(archive.files) == ["embeddings", "paths"]
        if path.suffix == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            return array.ndim == 2 and array.dtype == np.float32
    except (OSError, ValueError, SafetensorError):
        return False
    return False


def check_output(output: Path, videos: list[str], model: str | None, overwrite: bool) -> Path:
    """The output file, refused when it is an input, lies inside the model folder, or exists without being ours
    (see `videochat.convert.output_safety`)."""
    if output.suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"--output must end with one of {OUTPUT_SUFFIXES}, got {output.name}")
    return prepare_output_file(
        output,
        [*videos, model],
        overwrite,
        is_embedding_file,
        allow_inside=[video for video in videos if Path(video).is_dir()],
        written_by="videochat embed",
    )


def write_embeddings(output: Path, embeddings: torch.Tensor, paths: list[str]) -> None:
    """Write atomically (temporary file next to `output`, then rename)."""
    if output.suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"--output must end with one of {OUTPUT_SUFFIXES}, got {output.name}")
    array = np.ascontiguousarray(embeddings.numpy().astype(np.float32))

    def write(temporary: Path) -> None:
        if output.suffix == ".safetensors":
            save_file(
                {"embeddings": array}, str(temporary), metadata={"paths": json.dumps(paths), "written_by": WRITTEN_BY}
            )
        elif output.suffix == ".npz":
            with open(temporary, "wb") as stream:
                np.savez(stream, embeddings=array, paths=np.asarray(paths))
        else:
            with open(temporary, "wb") as stream:
                np.save(stream, array)

    write_file_atomically(output, write)


@handles_errors("embed")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videochat embed", description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="+", help="video files and/or folders of videos")
    parser.add_argument("--model", required=True, help="converted InternVideo2 folder")
    parser.add_argument("--output", default="embeddings.safetensors", help="output file (.safetensors, .npz, .npy)")
    parser.add_argument("--batch-size", type=int, default=8, help="videos per forward pass (default 8)")
    parser.add_argument("--no-normalize", action="store_true", help="keep the raw (not L2-normalised) embeddings")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="model dtype (default float32)")
    parser.add_argument(
        "--device", default=default_device(), help="cpu, cuda, cuda:1, ... (default: cuda if available)"
    )
    parser.add_argument("--skip-errors", action="store_true", help="skip videos that cannot be decoded (listed)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace OUTPUT if a previous videochat embed wrote it"
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be positive")
    try:
        output = check_output(Path(args.output), args.videos, args.model, args.overwrite)
        check_device(args.device)
        videos = expand_videos(args.videos)
        model, image_processor = load_embedding_model(args.model, DTYPES[args.dtype], args.device)
        embeddings, paths, skipped = embed_videos(
            model,
            image_processor,
            videos,
            args.batch_size,
            not args.no_normalize,
            args.skip_errors,
            not args.no_progress,
        )
        if not paths:
            raise ValueError("no video could be embedded")
        check_output(output, args.videos, args.model, args.overwrite)  # again: the file may have appeared meanwhile
        write_embeddings(output, embeddings, paths)
    except (OSError, ValueError) as error:
        return report_error("embed", error)
    for path, error in skipped.items():
        print(f"skipped {path}: {error}", file=sys.stderr)
    print(f"wrote {args.output}: {embeddings.shape[0]} embeddings of width {embeddings.shape[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
