# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Benchmark `videochat.convert.converter` on a synthetic InternVideo2-Chat hub snapshot: throughput and peak RSS.

The synthetic snapshot has the real 1590-key InternVideo2-Chat key set (shard layout, index, remote-code
`config.json`, unmerged LoRA, hub dtypes: LLM base weights bf16, everything else fp32). The vision tower and Q-Former
are real size; the LLM widths (and, below ~4.8 GB, the vision MLP width) are scaled to reach `--size-gb`.
The conversion runs in a fresh interpreter that reports its RSS after the imports (baseline) and its peak RSS.

    python bench/bench_convert.py --size-gb 5 [--workdir /tmp/videochat_bench] [--keep]
"""

import argparse
import json
import os
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


def scaled_shapes(manifest: dict, hidden: int, intermediate: int, vision_mlp: int) -> dict[str, tuple[int, ...]]:
    """Real key set; LLM dims 4096/14336/1024 -> hidden/intermediate/hidden//4 and ViT MLP 6144 -> vision_mlp."""
    llm_dims = {4096: hidden, 14336: intermediate, 1024: hidden // 4}
    shapes = {}
    for section in ("vision", "bridge", "llm"):
        for key, shape in manifest[section].items():
            if section == "llm" or key.startswith("project_"):
                shape = [llm_dims.get(dim, dim) for dim in shape]
            elif ".mlp.fc" in key:
                shape = [vision_mlp if dim == 6144 else dim for dim in shape]
            shapes[key] = tuple(shape)
    return shapes


def hub_dtype(key: str) -> torch.dtype:
    if key.endswith("position_ids"):
        return torch.int64
    if key.startswith("lm.") and ".lora_" not in key:
        return torch.bfloat16
    return torch.float32


def total_bytes(shapes: dict) -> int:
    return sum(
        torch.Size(shape).numel() * torch.empty((), dtype=hub_dtype(key)).element_size()
        for key, shape in shapes.items()
    )


def choose_dims(manifest: dict, size_bytes: int) -> tuple[int, int, int]:
    """(llm hidden, llm intermediate, vision mlp) whose synthetic checkpoint is closest to `size_bytes` from above."""
    candidates = [
        (hidden, hidden * 7 // 2, vision_mlp)
        for vision_mlp in (768, 1536, 3072, 6144)
        for hidden in range(512, 4097, 512)
    ]
    sizes = {dims: total_bytes(scaled_shapes(manifest, *dims)) for dims in candidates}
    large_enough = [dims for dims in candidates if sizes[dims] >= size_bytes]
    return min(large_enough, key=sizes.get) if large_enough else max(candidates, key=sizes.get)


def write_snapshot(folder: Path, size_gb: float) -> dict:
    from videochat.convert.writer import ShardWriter, TensorSpec, plan_shards, shard_file_names, write_index

    manifest = json.loads(MANIFEST.read_text())
    hidden, intermediate, vision_mlp = choose_dims(manifest, int(size_gb * 1e9))
    shapes = scaled_shapes(manifest, hidden, intermediate, vision_mlp)
    folder.mkdir(parents=True)
    specs = [TensorSpec(key, hub_dtype(key), shape) for key, shape in shapes.items()]
    shards = plan_shards(specs, max(total_bytes(shapes) // 4 + 1, 1))
    names = shard_file_names(len(shards))
    generator = torch.Generator().manual_seed(0)
    for shard, name in zip(shards, names):
        writer = ShardWriter(folder / name, shard)
        for spec in shard:
            if spec.dtype == torch.int64:
                tensor = torch.arange(spec.shape[-1]).expand(spec.shape).contiguous()
            else:
                tensor = (torch.rand(spec.shape, generator=generator) * 0.02 - 0.01).to(spec.dtype)
            writer.write(spec.name, tensor)
        writer.close()
    write_index(folder, shards, names)
    original = json.loads(ORIGINAL_CONFIG.read_text())
    original.pop("variant", None)
    original["tiny_overrides"] = {
        "vision_encoder_ctor": {
            "embed_dim": 1408,
            "depth": 40,
            "num_heads": 16,
            "mlp_ratio": str(Fraction(vision_mlp, 1408)),
            "qkv_bias": False,
            "qk_normalization": True,
            "init_values": 1e-5,
            "blocks_built": 39,
        }
    }
    original["model_config"]["llm"].update(lora_r=16, lora_alpha=32)
    original["model_config"]["bridge"].pop("qformer_hidden_size", None)
    (folder / "config.json").write_text(json.dumps(original, indent=2))
    heads = hidden // 128
    llm = folder / "llm_config"
    llm.mkdir()
    (llm / "config.json").write_text(
        json.dumps(
            {
                "model_type": "mistral",
                "hidden_size": hidden,
                "intermediate_size": intermediate,
                "num_hidden_layers": 32,
                "num_attention_heads": heads,
                "num_key_value_heads": max(1, heads // 4),
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
        "llm_hidden": hidden,
        "llm_intermediate": intermediate,
        "vision_mlp": vision_mlp,
        "source_bytes": total_bytes(shapes),
        "num_keys": len(shapes),
        "num_shards": len(shards),
    }


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def convert_and_measure(source: Path, output: Path, max_shard_size: str) -> dict:
    """Runs in a fresh interpreter: baseline RSS after imports, then convert, then peak RSS (ru_maxrss)."""
    import videochat  # noqa: F401
    from videochat.convert.converter import convert

    baseline = rss_bytes()
    start = time.perf_counter()
    result = convert(
        source,
        output,
        preset="internvideo2-chat-8b-hd",
        llm=source / "llm_config",
        max_shard_size=max_shard_size,
        progress=False,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "seconds": seconds,
        "output_bytes": result.total_bytes,
        "baseline_rss": baseline,
        "peak_rss": peak,
        "num_tensors": result.num_tensors,
        "num_output_shards": len(result.shards),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-gb", type=float, default=5.0, help="size of the synthetic checkpoint (>= 4 for the target)"
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
        "shards "
        f"(LLM hidden {info['llm_hidden']}, vision MLP {info['vision_mlp']}), written in "
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
        f"{result['num_output_shards']} "
        f"shards) in {result['seconds']:.1f} s: {throughput:.0f} MB/s"
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
