# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Benchmark `videochat.convert.converter` on a synthetic InternVideo2-Chat hub snapshot: throughput and peak RSS.

The synthetic snapshot has the real InternVideo2-Chat layout at the real widths (LLM 4096 / 14336 / 1024 and vocab
32768, ViT 1408 / 6144, BERT-base Q-Former; shard layout, index, remote-code `config.json`, unmerged LoRA r=16 in
fp32, hub dtypes: LLM base weights bf16, everything else fp32). At the default `--size-gb` it is the real
checkpoint (19.39 GB, 1590 keys); a smaller size keeps fewer LLM layers and ViT blocks in proportion, so about the
real share of the bytes (73%) still goes through the LoRA fold and the rest are file copies. The conversion runs in a
fresh interpreter that reports its RSS after the imports (baseline), its peak RSS and the time spent folding LoRA;
the clock stops once every output file is flushed to disk (`fsync`).

    python bench/bench_convert.py [--size-gb 19.4] [--workdir /tmp/videochat_bench] [--keep]
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import torch


REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = (
    Path(os.environ.get("VIDEOCHAT_SHARED", REPO_ROOT.parent / "shared"))
    / "specs"
    / "keys"
    / "internvideo2_chat_8b_hd.json"
)
ORIGINAL_CONFIG = MANIFEST.parents[2] / "fixtures" / "internvideo2_chat" / "tiny_hd" / "original_config.json"
LLM_LAYERS, VIT_BLOCKS = 32, 39  # in the released checkpoint
_BLOCK = re.compile(r"(?:vision_encoder\.blocks|\.layers)\.(\d+)\.")


def kept_shapes(manifest: dict, llm_layers: int, vit_blocks: int) -> dict[str, tuple[int, ...]]:
    """The real key set and shapes, with only the first `llm_layers` LLM layers and `vit_blocks` ViT blocks."""
    shapes = {}
    for section in ("vision", "bridge", "llm"):
        for key, shape in manifest[section].items():
            found = _BLOCK.search(key)
            if found and int(found[1]) >= (llm_layers if section == "llm" else vit_blocks):
                continue
            shapes[key] = tuple(shape)
    return shapes


def hub_dtype(key: str) -> torch.dtype:
    if key.endswith("position_ids"):
        return torch.int64
    if key.startswith("lm.") and ".lora_" not in key:
        return torch.bfloat16
    return torch.float32


def nbytes(key: str, shape: tuple[int, ...]) -> int:
    return torch.Size(shape).numel() * torch.empty((), dtype=hub_dtype(key)).element_size()


def total_bytes(shapes: dict) -> int:
    return sum(nbytes(key, shape) for key, shape in shapes.items())


def folded_bytes(shapes: dict) -> int:
    """Bytes of the weights that carry LoRA adapters (read, folded and written in bf16)."""
    adapted = {key.split(".lora_")[0] + ".weight" for key in shapes if ".lora_" in key}
    return sum(nbytes(key, shapes[key]) for key in adapted)


def choose_depths(manifest: dict, size_bytes: int) -> tuple[int, int]:
    """(LLM layers, ViT blocks), both the same fraction of the released depth, closest to `size_bytes` from above."""
    candidates = [(layers, max(1, round(VIT_BLOCKS * layers / LLM_LAYERS))) for layers in range(1, LLM_LAYERS + 1)]
    sizes = {depths: total_bytes(kept_shapes(manifest, *depths)) for depths in candidates}
    large_enough = [depths for depths in candidates if sizes[depths] >= size_bytes]
    return min(large_enough, key=sizes.get) if large_enough else max(candidates, key=sizes.get)


class RandomPool:
    """Random-looking tensor contents without generating every byte: slices of one random pool per dtype."""

    def __init__(self, elements: int = 2**24, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.pool = torch.rand(elements, generator=generator) * 0.02 - 0.01
        self.cast = {}
        self.offset = 0

    def tensor(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        pool = self.cast.setdefault(dtype, self.pool.to(dtype))
        count = torch.Size(shape).numel()
        repeats = -(-(count + self.offset) // pool.numel())
        values = (
            pool.repeat(repeats)[self.offset : self.offset + count]
            if repeats > 1
            else pool[self.offset : self.offset + count]
        )
        self.offset = (self.offset + 7919) % pool.numel()
        return values.reshape(shape).clone()


def write_snapshot(folder: Path, size_gb: float) -> dict:
    from videochat.convert.writer import ShardWriter, TensorSpec, plan_shards, shard_file_names, write_index

    manifest = json.loads(MANIFEST.read_text())
    llm_layers, vit_blocks = choose_depths(manifest, int(size_gb * 1e9))
    shapes = kept_shapes(manifest, llm_layers, vit_blocks)
    folder.mkdir(parents=True)
    specs = [TensorSpec(key, hub_dtype(key), shape) for key, shape in shapes.items()]
    shards = plan_shards(specs, max(total_bytes(shapes) // 4 + 1, 1))
    names = shard_file_names(len(shards))
    pool = RandomPool()
    for shard, name in zip(shards, names):
        writer = ShardWriter(folder / name, shard)
        for spec in shard:
            if spec.dtype == torch.int64:
                tensor = torch.arange(spec.shape[-1]).expand(spec.shape).contiguous()
            else:
                tensor = pool.tensor(spec.shape, spec.dtype)
            writer.write(spec.name, tensor)
            del tensor
        writer.close()
    write_index(folder, shards, names)
    original = json.loads(ORIGINAL_CONFIG.read_text())
    original.pop("variant", None)
    original["tiny_overrides"] = {
        "vision_encoder_ctor": {
            "embed_dim": 1408,
            "depth": vit_blocks + 1,
            "num_heads": 16,
            "mlp_ratio": str(Fraction(6144, 1408)),
            "qkv_bias": False,
            "qk_normalization": True,
            "init_values": 1e-5,
            "blocks_built": vit_blocks,
        }
    }
    original["model_config"]["llm"].update(lora_r=16, lora_alpha=32)
    original["model_config"]["bridge"].pop("qformer_hidden_size", None)
    (folder / "config.json").write_text(json.dumps(original, indent=2))
    llm = folder / "llm_config"
    llm.mkdir()
    (llm / "config.json").write_text(
        json.dumps(
            {
                "model_type": "mistral",
                "hidden_size": 4096,
                "intermediate_size": 14336,
                "num_hidden_layers": llm_layers,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "vocab_size": 32768,
                "max_position_embeddings": 32768,
                "rope_theta": 1e6,
                "rms_norm_eps": 1e-5,
                "sliding_window": None,
                "tie_word_embeddings": False,
            }
        )
    )
    return {
        "llm_layers": llm_layers,
        "vit_blocks": vit_blocks,
        "source_bytes": total_bytes(shapes),
        "folded_bytes": folded_bytes(shapes),
        "num_keys": len(shapes),
        "num_shards": len(shards),
    }


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def flush_to_disk(folder: Path) -> None:
    """`fsync` every file of `folder` and the folder itself: the data is on disk, not only in the page cache."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def convert_and_measure(source: Path, output: Path, max_shard_size: str) -> dict:
    """Runs in a fresh interpreter: baseline RSS after imports, then convert and flush, then peak RSS (ru_maxrss)."""
    import videochat  # noqa: F401
    from videochat.convert import keymap
    from videochat.convert.converter import convert

    folding = {"seconds": 0.0, "cpu_seconds": 0.0}
    merge_lora = keymap.merge_lora

    def timed_merge_lora(*args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return merge_lora(*args, **kwargs)
        finally:
            folding["seconds"] += time.perf_counter() - start
            folding["cpu_seconds"] += time.process_time() - cpu

    keymap.merge_lora = timed_merge_lora
    baseline = rss_bytes()
    start, cpu = time.perf_counter(), time.process_time()
    result = convert(
        source,
        output,
        preset="internvideo2-chat-8b-hd",
        llm=source / "llm_config",
        max_shard_size=max_shard_size,
        progress=False,
    )
    unflushed = time.perf_counter() - start
    flush_to_disk(output)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "seconds": seconds,
        "seconds_before_flush": unflushed,
        "cpu_seconds": cpu_seconds,
        "fold_seconds": folding["seconds"],
        "fold_cpu_seconds": folding["cpu_seconds"],
        "output_bytes": result.total_bytes,
        "baseline_rss": baseline,
        "peak_rss": peak,
        "num_tensors": result.num_tensors,
        "num_output_shards": len(result.shards),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-gb", type=float, default=19.4, help="size of the synthetic checkpoint (default: the real one)"
    )
    parser.add_argument("--workdir", default="/tmp/videochat_bench", help="where the synthetic snapshot and output go")
    parser.add_argument("--max-shard-size", default="5GB")
    parser.add_argument(
        "--output-dir", help="put the converted folder here instead of under --workdir (e.g. another disk)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the snapshot and output")
    parser.add_argument("--_measure", nargs=2, metavar=("SOURCE", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._measure:
        print(json.dumps(convert_and_measure(Path(args._measure[0]), Path(args._measure[1]), args.max_shard_size)))
        return 0

    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    free = shutil.disk_usage(workdir.parent).free
    if free < 2.2 * args.size_gb * 1e9:
        raise SystemExit(f"not enough free disk in {workdir.parent}: {free / 1e9:.1f} GB for a {args.size_gb} GB run")
    source = workdir / "snapshot"
    output = Path(args.output_dir) / "videochat_bench_converted" if args.output_dir else workdir / "converted"
    shutil.rmtree(output, ignore_errors=True)
    start = time.perf_counter()
    info = write_snapshot(source, args.size_gb)
    os.sync()  # the snapshot's own write-back must not be charged to the conversion
    print(
        f"synthetic snapshot: {info['source_bytes'] / 1e9:.2f} GB, {info['num_keys']} keys in {info['num_shards']} "
        f"shards ({info['llm_layers']} LLM layers, {info['vit_blocks']} ViT blocks at the real widths; "
        f"{100 * info['folded_bytes'] / info['source_bytes']:.0f}% of the bytes go through the LoRA fold), written in "
        f"{time.perf_counter() - start:.1f} s"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, __file__, "--max-shard-size", args.max_shard_size, "--_measure", str(source), str(output)],
        env=env,
        capture_output=True,
        text=True,
    )
    if run.returncode:
        print(run.stdout, run.stderr, file=sys.stderr)
        return run.returncode
    result = json.loads(run.stdout.strip().splitlines()[-1])
    throughput = result["output_bytes"] / result["seconds"] / 1e6
    extra_rss = (result["peak_rss"] - result["baseline_rss"]) / 2**30
    print(
        f"converted {result['output_bytes'] / 1e9:.2f} GB ({result['num_tensors']} tensors, "
        f"{result['num_output_shards']} shards) in {result['seconds']:.1f} s, flushed to disk: {throughput:.0f} MB/s "
        f"({result['output_bytes'] / result['seconds_before_flush'] / 1e6:.0f} MB/s before the flush)"
    )
    print(
        f"LoRA fold: {result['fold_seconds']:.1f} s of {result['seconds']:.1f} s "
        f"({100 * result['fold_seconds'] / result['seconds']:.0f}%), {result['fold_cpu_seconds']:.1f} of "
        f"{result['cpu_seconds']:.1f} CPU-seconds"
    )
    print(
        f"RSS: baseline {result['baseline_rss'] / 2**30:.2f} GiB, peak {result['peak_rss'] / 2**30:.2f} GiB, "
        f"peak above baseline {extra_rss:.2f} GiB"
    )
    ok = throughput >= 200 and extra_rss <= 1.5
    print("targets (>= 200 MB/s, <= 1.5 GiB above baseline):", "MET" if ok else "NOT MET")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(output, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
