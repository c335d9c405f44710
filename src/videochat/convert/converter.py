# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Convert an original checkpoint into a verified, Hub-ready folder of our safetensors (`videochat convert`).

How it works: the source is opened lazily (`sources.open_source`: safetensors with positioned reads, pickles only
with `weights_only=True`), the declarative key map turns the key list into operations without reading a tensor, the
resulting names and shapes are checked against our model built on the meta device, and then every tensor is read,
converted (LoRA folded, fused projections split) and appended to a pre-planned safetensors shard, one tensor at a
time. Everything is written to a temporary folder next to OUTPUT that is renamed into place only when complete;
`config.json` is written last.
"""

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import HfApi
from tqdm.auto import tqdm

from ..modeling_videochat import VideoChatForConditionalGeneration
from .checkpoint_io import SourceTensors, read_safetensors_header
from .keymap import ConversionPlan, Copy, Operation, run_operation
from .output_safety import MARKER_NAME, prepare_output_folder, publish_folder, staging_folder
from .presets import build_generation_config
from .side_files import BackgroundHashes, dominant_dtype, save_processor, write_model_card
from .sources import ConversionError, ConversionSource, open_source, read_json
from .verify import format_parity, verify_visual_path
from .writer import ShardWriter, TensorSpec, parse_size, plan_shards, shard_file_names, write_index


DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_dtype(dtype) -> torch.dtype | None:
    """The `torch.dtype` a `--dtype` value names (`None`: keep the source dtypes)."""
    if dtype is None:
        return None
    target_dtype = dtype if isinstance(dtype, torch.dtype) else DTYPES.get(str(dtype).removeprefix("torch."))
    if target_dtype is None:
        raise ConversionError(f"unsupported dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    return target_dtype


# ---------------------------------------------------------------------------------------------------------------------
# Planning (no tensor is read here)
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class WritePlan:
    plan: ConversionPlan
    specs: list[TensorSpec]
    shards: list[list[TensorSpec]]
    shard_names: list[str]

    @property
    def total_bytes(self) -> int:
        return sum(spec.nbytes for spec in self.specs)

    def result_fields(self) -> dict:
        """The `ConversionResult` fields this plan tells."""
        return {
            "num_tensors": len(self.specs),
            "total_bytes": self.total_bytes,
            "shards": self.shard_names,
            "dropped": self.plan.dropped,
        }


def expected_model_shapes(config) -> dict[str, tuple[int, ...]]:
    """`{name: shape}` of our model's state dict, from an instance on the meta device (no memory used)."""
    with torch.device("meta"):
        model = VideoChatForConditionalGeneration(config)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def compare_with_model(target_shapes: dict[str, tuple[int, ...]], config) -> dict[str, list]:
    """Missing / unexpected / shape-mismatched names of a converted `{name: shape}` against our model."""
    expected = expected_model_shapes(config)
    return {
        "missing": sorted(set(expected) - set(target_shapes)),
        "unexpected": sorted(set(target_shapes) - set(expected)),
        "mismatched": sorted(
            (name, target_shapes[name], expected[name])
            for name in set(expected) & set(target_shapes)
            if tuple(target_shapes[name]) != tuple(expected[name])
        ),
    }


def plan_conversion(source: ConversionSource, dtype: torch.dtype | None, max_shard_size: int) -> WritePlan:
    """Map every source key (unknown keys stop here), check names and shapes against the meta model, lay out shards."""
    checkpoint = source.checkpoint
    plan = source.key_map.plan(checkpoint.keys())
    specs: list[TensorSpec] = []
    for op in plan.operations:
        shapes = op.transform.shapes(tuple(checkpoint.shape(op.source)), len(op.targets))
        source_dtype = checkpoint.dtype(op.source)
        target_dtype = dtype if dtype is not None and source_dtype.is_floating_point else source_dtype
        specs.extend(TensorSpec(target, target_dtype, tuple(shape)) for target, shape in zip(op.targets, shapes))
    problems = compare_with_model({spec.name: spec.shape for spec in specs}, source.config)
    if any(problems.values()):
        shown = {key: value[:20] for key, value in problems.items() if value}
        raise ConversionError(
            f"the converted weights would not match our model for preset {source.preset.name!r}: {shown}"
        )
    shards = plan_shards(specs, max_shard_size)
    return WritePlan(plan, specs, shards, shard_file_names(len(shards)))


# ---------------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------------


def _progress_bar(total: int, enabled: bool):
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="converting", disable=not enabled)


def _is_verbatim_copy(op: Operation, source: ConversionSource, by_target: dict[str, TensorSpec]) -> bool:
    """A tensor whose bytes go to the output unchanged (copied kernel-side instead of through memory)."""
    checkpoint = source.checkpoint
    return (
        isinstance(op.transform, Copy)
        and op.lora_a is None
        and isinstance(checkpoint, SourceTensors)
        and op.source in checkpoint.reader
        and checkpoint.reader.dtype(op.source) == by_target[op.targets[0]].dtype
        and tuple(checkpoint.shape(op.source)) == by_target[op.targets[0]].shape
    )


def write_weights(folder: Path, source: ConversionSource, write_plan: WritePlan, progress: bool = True) -> None:
    """Stream every converted tensor into its planned shard (one source tensor in memory at a time)."""
    by_target = {spec.name: spec for spec in write_plan.specs}
    shard_of = {spec.name: index for index, shard in enumerate(write_plan.shards) for spec in shard}
    writers = [ShardWriter(folder / name, shard) for shard, name in zip(write_plan.shards, write_plan.shard_names)]
    try:
        with _progress_bar(write_plan.total_bytes, progress) as bar:
            for op in write_plan.plan.operations:
                if _is_verbatim_copy(op, source, by_target):
                    descriptor, offset, dtype, shape = source.checkpoint.reader.location(op.source)
                    bar.update(
                        writers[shard_of[op.targets[0]]].write_from_file(
                            op.targets[0], dtype, shape, descriptor, offset
                        )
                    )
                    continue
                # positioned reads give a fresh buffer per tensor: LoRA is folded into it, not into a new tensor
                fresh = isinstance(source.checkpoint, SourceTensors) and op.source in source.checkpoint.reader
                converted = run_operation(op, source.checkpoint.__getitem__, source.lora_scaling, fold_in_place=fresh)
                for name, tensor in converted.items():
                    tensor = tensor.to(by_target[name].dtype)
                    bar.update(writers[shard_of[name]].write(name, tensor))
                    del tensor
        for writer in writers:
            writer.close()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    if len(write_plan.shards) > 1:
        write_index(folder, write_plan.shards, write_plan.shard_names)


def check_written_weights(folder: Path, config) -> dict[str, list]:
    """Names and shapes of the written safetensors headers against our meta model (no tensor is read)."""
    index = folder / "model.safetensors.index.json"
    names = sorted(set(read_json(index)["weight_map"].values())) if index.is_file() else ["model.safetensors"]
    shapes = {}
    for name in names:
        for key, entry in read_safetensors_header(folder / name).items():
            if key != "__metadata__":
                shapes[key] = tuple(entry["shape"])
    return compare_with_model(shapes, config)


# ---------------------------------------------------------------------------------------------------------------------
# Output folder handling and the Hub
# ---------------------------------------------------------------------------------------------------------------------


def upload_to_hub(
    folder: str | Path, repo_id: str, dry_run: bool = False, private: bool = False, token: str | None = None
) -> list[str]:
    """Upload a converted folder with `huggingface_hub`; returns the uploaded files (with `dry_run`, only lists
    them)."""
    folder = Path(folder)
    files = sorted(
        str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file() and path.name != MARKER_NAME
    )
    if not (folder / "config.json").is_file():
        raise ConversionError(f"{folder} is not a converted folder (config.json missing)")
    if dry_run:
        return files
    try:
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            commit_message="Add converted VideoChat checkpoint (videochat convert)",
            ignore_patterns=[MARKER_NAME],
        )
    except Exception as error:  # network, authentication, quota: the finished folder stays where it is
        raise ConversionError(
            f"could not upload {folder} to the Hub repo {repo_id!r} ({type(error).__name__}: {error}). The converted "
            f"folder is complete; upload it later with `hf upload {repo_id} {folder}`"
        ) from None
    return files


# ---------------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class ConversionResult:
    output: Path
    preset: str
    num_tensors: int
    total_bytes: int
    shards: list[str]
    dropped: dict[str, str]
    input_sha256: dict[str, str]
    parity: dict | None
    messages: list[str]
    uploaded: list[str] | None = None


def convert(
    source,
    output,
    preset=None,
    llm=None,
    vit=None,
    qformer=None,
    tokenizer=None,
    qformer_tokenizer=None,
    dtype=None,
    verify=False,
    push_to_hub=None,
    max_shard_size="5GB",
    overwrite=False,
    progress=True,
    save_processor_files=True,
    push_dry_run=False,
) -> ConversionResult:
    """
    Convert an original checkpoint into a Hub-ready folder at `output` (see the module docstring).

    Args:
        source: hub snapshot folder, checkpoint file, original folder or VideoChat2 / VideoChat stage file.
        output: the folder to create. It may not be, contain or lie inside an input; an existing non-empty folder is
            replaced only with `overwrite` and only when `videochat` wrote it (see `output_safety`).
        preset: a `videochat.convert.presets` name; detected from the source when omitted.
        llm / vit / qformer: base LLM folder (VideoChat2 / VideoChat, or an LLM config override), EVA ViT-g file and
            BLIP-2 Q-Former file (VideoChat v1).
        tokenizer / qformer_tokenizer: LLM tokenizer folder and Q-Former (BERT) tokenizer folder.
        dtype: cast floating tensors (`"bfloat16"`, `"float16"`, `"float32"`); default keeps the source dtypes.
        verify: recompute the visual path and LLM spot tensors from the source and compare (model card report).
        push_to_hub: repo id to upload the finished folder to.
        overwrite: replace an existing output folder that a previous `videochat` run wrote.
        max_shard_size: shard size (`"5GB"`, bytes, ...).
    """
    inputs = [source, llm, vit, qformer, tokenizer, qformer_tokenizer]
    output, recovered = prepare_output_folder(output, inputs, overwrite)
    target_dtype = resolve_dtype(dtype)
    conversion_source = open_source(source, preset, llm, vit, qformer, tokenizer, qformer_tokenizer)
    found_inputs = [conversion_source.tokenizer_dir, conversion_source.qformer_tokenizer_dir, *conversion_source.files]
    prepare_output_folder(output, [*inputs, *found_inputs], overwrite)
    write_plan = plan_conversion(conversion_source, target_dtype, parse_size(max_shard_size))
    for note in [*recovered, *conversion_source.notes]:
        print(f"note: {note}", file=sys.stderr)
    staging = staging_folder(output)
    hashes = BackgroundHashes(conversion_source.files)
    try:
        options = FolderOptions(target_dtype, verify, push_to_hub, save_processor_files, progress)
        written = write_folder(staging, conversion_source, write_plan, hashes, options)
        publish_folder(staging, output, "convert")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    uploaded = upload_to_hub(output, push_to_hub, dry_run=push_dry_run) if push_to_hub else None
    return ConversionResult(
        output, conversion_source.preset.name, **write_plan.result_fields(), **written, uploaded=uploaded
    )


@dataclass
class FolderOptions:
    """What `convert` was asked for beyond the weights: the output dtype, verification, the Hub repo named in the
    model card, whether to save the processor files."""

    target_dtype: torch.dtype | None = None
    verify: bool = False
    push_to_hub: str | None = None
    save_processor_files: bool = True
    progress: bool = True


def write_folder(
    folder: Path, source: ConversionSource, write_plan: WritePlan, hashes: BackgroundHashes, options: FolderOptions
) -> dict:
    """Weights, generation config, processor files, `config.json` (before the verification that loads the folder),
    the verification and the model card into `folder`; returns the result fields `messages`, `parity` and
    `input_sha256`."""
    write_weights(folder, source, write_plan, options.progress)
    problems = check_written_weights(folder, source.config)
    if any(problems.values()):
        raise ConversionError(f"written weights do not match the model: {problems}")
    config = source.config
    config.dtype = options.target_dtype or dominant_dtype(write_plan.specs)
    config.architectures = ["VideoChatForConditionalGeneration"]
    build_generation_config(source.preset.name).save_pretrained(str(folder))
    messages = save_processor(folder, source) if options.save_processor_files else ["processor not saved (disabled)"]
    for message in messages:
        print(f"note: {message}", file=sys.stderr)
    # config.json last: a folder without it is never loadable
    config.save_pretrained(str(folder))
    parity = None
    if options.verify:
        target_dtypes = {spec.name: spec.dtype for spec in write_plan.specs}
        parity = verify_visual_path(folder, source, write_plan.plan.operations, target_dtypes)
        print_parity(parity)
    input_hashes = hashes.join()
    write_model_card(
        folder, source, input_hashes, format_parity(parity), options.push_to_hub, options.target_dtype, messages
    )
    if parity is not None and not parity["ok"]:
        raise ConversionError(f"verification failed: {parity['failures']}")
    return {"messages": messages, "parity": parity, "input_sha256": input_hashes}


def print_parity(report: dict) -> None:
    print(f"verification against {report['reference']}:")
    for name, diff in report["max_abs_diff"].items():
        print(f"  {name:<60} max_abs_diff={diff:.3e}")
    print("  OK" if report["ok"] else "  FAILED: " + "; ".join(report["failures"]))


__all__ = ["DTYPES", "ConversionResult", "compare_with_model", "convert", "plan_conversion", "upload_to_hub"]
