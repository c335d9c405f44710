# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Convert the InternVideo2 foundation-model checkpoints (`videochat convert SOURCE OUTPUT`, alias
`videochat convert-internvideo2`).

Sources: the stage-1 classifiers (`1B_ft_k710_ft_k400_f8.pth`, ..., `S14/B14/L14 .../pytorch_model.bin`), the
stage-1 distillation checkpoints (`*_dist_1B_stage2/pytorch_model.bin`, converted to the feature model) and the
stage-2 video-text model (`InternVideo2-stage2_1b-224p-f4.pt`), as `{"model": sd}`, `{"module": sd}` (DeepSpeed) or
bare state dicts, `.pth`/`.pt`/`.bin` (read with `torch.load(weights_only=True)`, never executing code) or
`.safetensors`, any float dtype. The checkpoint is opened lazily, every key is mapped or dropped by name (unknown
keys stop the conversion before anything is written), names and shapes are checked against our model built on the
meta device, tensors are streamed into safetensors shards, and the folder is written under a temporary name and
renamed into place when complete.

The model dimensions come from the checkpoint's shapes; what shapes cannot tell (attention heads, image size, the
GELU flavour) comes from the preset record of the released model.
"""

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import processors
from transformers import BertTokenizer, PreTrainedTokenizerFast

from ..configuration_internvideo2 import InternVideo2Config, InternVideo2TextConfig, InternVideo2VisionConfig
from ..image_processing_internvideo2 import InternVideo2ImageProcessor
from ..modeling_internvideo2 import InternVideo2ForVideoClassification, InternVideo2Model, InternVideo2VideoTextModel
from ..processing_internvideo2 import InternVideo2Processor
from .checkpoint_io import SourceTensors, read_safetensors_header
from .converter import WritePlan, resolve_dtype, write_weights
from .key_maps.internvideo2 import (
    INTERNVIDEO2_CLASSIFIER_KEY_MAP,
    INTERNVIDEO2_FEATURES_KEY_MAP,
    INTERNVIDEO2_VIDEO_TEXT_KEY_MAP,
)
from .keymap import KeyMap, UnknownKeysError, convert_shapes
from .output_safety import prepare_output_folder, publish_folder, staging_folder
from .presets import GENERIC_INTERNVIDEO2_PRESETS, INTERNVIDEO2_PRESETS, InternVideo2Preset
from .sources import ConversionError, detect_internvideo2_kind, internvideo2_checkpoint_files
from .writer import TensorSpec, parse_size, plan_shards, shard_file_names


KINDS = ("classifier", "features", "video_text")
GELU = {"exact": "gelu", "tanh": "gelu_pytorch_tanh"}
GELU_NOTES = {
    "tanh": "tanh GELU: the fused CUDA branch (flash_attn FusedMLP) that ran the released numbers",
    "exact": "exact (erf) GELU: the original's pure-PyTorch branch",
}

# what the shapes cannot tell, per tower width (the factories hard-code them)
TOWER_HEADS = {384: 6, 768: 12, 1024: 16, 1408: 16}
BERT_LARGE_HEADS = {1024: 16}
# the same per original factory, for towers built with other widths (attention pooling: 16 heads in every factory)
FACTORY_HEADS = {
    "internvideo2_small_patch14_224": 6,
    "internvideo2_base_patch14_224": 12,
    "internvideo2_large_patch14_224": 16,
    "internvideo2_1B_patch14_224": 16,
    "internvideo2_6B_patch14_224": 25,
    "pretrain_internvideo2_1b_patch14_224": 16,
}


def factory_fields(factory: str | None) -> dict:
    """Config fields an original factory hard-codes and a checkpoint's shapes cannot tell."""
    if factory not in FACTORY_HEADS:
        return {}
    return {"num_attention_heads": FACTORY_HEADS[factory], "pooling_num_attention_heads": 16, "image_size": 224}


def preset_record(name: str | None, kind: str) -> InternVideo2Preset:
    """The record `--preset name` names, or without a name the generic record of the detected `kind`."""
    if not name:
        return INTERNVIDEO2_PRESETS[GENERIC_INTERNVIDEO2_PRESETS[kind]]
    if name not in INTERNVIDEO2_PRESETS:
        raise ConversionError(f"unknown InternVideo2 preset {name!r}; choose one of {sorted(INTERNVIDEO2_PRESETS)}")
    return INTERNVIDEO2_PRESETS[name]


# ---------------------------------------------------------------------------------------------------------------------
# The config a source's shapes describe, and the config its shapes describe
# ---------------------------------------------------------------------------------------------------------------------


def _max_index(shapes: dict, pattern: str) -> int:
    indices = [int(found[1]) for key in shapes if (found := re.fullmatch(pattern, key))]
    if not indices:
        raise ConversionError(f"no key matches {pattern!r}")
    return max(indices)


def vision_config_fields(shapes: dict, prefix: str, gelu: str, overrides: dict) -> dict:
    """`InternVideo2VisionConfig` fields from the tower's shapes under `prefix`, plus `overrides`."""
    hidden_size = shapes[f"{prefix}cls_token"][-1]
    conv = shapes[f"{prefix}patch_embed.proj.weight"]
    image_size = int(overrides.get("image_size", 224))
    tubelet, patch = conv[2], conv[4]
    per_frame = (image_size // patch) ** 2
    positions = shapes[f"{prefix}pos_embed"][1] - 1
    if positions % per_frame:
        raise ConversionError(f"pos_embed has {positions} patch rows, not a multiple of {per_frame} ({image_size}px)")
    if hidden_size not in TOWER_HEADS and "num_attention_heads" not in overrides:
        raise ConversionError(f"no known head count for a {hidden_size}-wide tower; give num_attention_heads")
    fields = {
        "hidden_size": hidden_size,
        "intermediate_size": shapes[f"{prefix}blocks.0.mlp.fc1.weight"][0],
        "num_hidden_layers": 1 + _max_index(shapes, rf"{re.escape(prefix)}blocks\.(\d+)\..+"),
        "num_attention_heads": TOWER_HEADS.get(hidden_size),
        "image_size": image_size,
        "patch_size": patch,
        "num_channels": conv[1],
        "tubelet_size": tubelet,
        "num_frames": positions // per_frame * tubelet,
        "hidden_act": GELU[gelu],
        "use_image_position_embeddings": f"{prefix}img_pos_embed" in shapes,
        "pooling_num_attention_heads": 16,
        "pooler_output_size": shapes[f"{prefix}clip_projector.cross_attn.proj.weight"][0],
        "layer_norm_eps": 1e-6,
        "pooler_layer_norm_eps": 1e-5,
        "attention_bias": f"{prefix}blocks.0.attn.qkv.bias" in shapes,
        "use_qk_norm": True,
        "layer_scale_init_value": 1e-5,
    }
    return {**fields, **{key: value for key, value in overrides.items() if key != "image_size"}}


def text_config_fields(shapes: dict, overrides: dict) -> dict:
    """`InternVideo2TextConfig` fields from the BERT shapes (`text_encoder.bert.*`), plus `overrides`."""
    bert = "text_encoder.bert."
    hidden_size = shapes[f"{bert}embeddings.word_embeddings.weight"][1]
    cross = [
        int(found[1])
        for key in shapes
        if (found := re.fullmatch(r"text_encoder\.bert\.encoder\.layer\.(\d+)\.crossattention\..+", key))
    ]
    if hidden_size not in BERT_LARGE_HEADS and "num_attention_heads" not in overrides:
        raise ConversionError(f"no known head count for a {hidden_size}-wide BERT; give num_attention_heads")
    num_layers = 1 + _max_index(shapes, r"text_encoder\.bert\.encoder\.layer\.(\d+)\..+")
    fields = {
        "vocab_size": shapes[f"{bert}embeddings.word_embeddings.weight"][0],
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": BERT_LARGE_HEADS.get(hidden_size),
        "intermediate_size": shapes[f"{bert}encoder.layer.0.intermediate.dense.weight"][0],
        "max_position_embeddings": shapes[f"{bert}embeddings.position_embeddings.weight"][0],
        "type_vocab_size": shapes[f"{bert}embeddings.token_type_embeddings.weight"][0],
        "fusion_layer": min(cross) if cross else num_layers,
        "encoder_hidden_size": (
            shapes[f"{bert}encoder.layer.{min(cross)}.crossattention.self.key.weight"][1]
            if cross
            else shapes["vision_encoder.cls_token"][-1]
        ),
        "layer_norm_eps": 1e-12,
        "hidden_act": "gelu",
    }
    return {**fields, **overrides}


def read_labels(path: str | Path | None, num_labels: int) -> dict[int, str]:
    """`id2label` from a label file: one name per line (`.txt`), a JSON list, or a JSON `{id: name}` /
    `{name: id}` object. Without a file: `LABEL_i`."""
    if path is None:
        return {index: f"LABEL_{index}" for index in range(num_labels)}
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith(".json"):
        data = json.loads(text)
        if isinstance(data, dict):
            pairs = (
                [(int(k), str(v)) for k, v in data.items()]
                if all(str(k).isdigit() for k in data)
                else [(int(v), str(k)) for k, v in data.items()]
            )
            labels = dict(sorted(pairs))
        else:
            labels = dict(enumerate(str(name) for name in data))
    else:
        labels = dict(enumerate(line.strip() for line in text.splitlines() if line.strip()))
    if sorted(labels) != list(range(num_labels)):
        raise ConversionError(f"{path} names {len(labels)} classes but the classifier has {num_labels}")
    return labels


def build_config(kind: str, shapes: dict, gelu: str, overrides: dict | None = None, labels=None):
    """Our config for a checkpoint of `kind` with `shapes`; `overrides` = `{"vision": {...}, "text": {...},
    "model": {...}}` for what the shapes cannot tell (tiny test models)."""
    overrides = overrides or {}
    if kind == "video_text":
        vision = vision_config_fields(shapes, "vision_encoder.", gelu, overrides.get("vision", {}))
        text = text_config_fields(shapes, overrides.get("text", {}))
        return InternVideo2Config(
            vision_config=InternVideo2VisionConfig(**vision),
            text_config=InternVideo2TextConfig(**text),
            projection_dim=shapes["vision_proj.weight"][0],
            **overrides.get("model", {}),
        )
    vision = vision_config_fields(shapes, "", gelu, overrides.get("vision", {}))
    if kind == "classifier":
        vision["id2label"] = read_labels(labels, shapes["head.weight"][0])
    return InternVideo2VisionConfig(**vision)


MODEL_CLASSES = {
    "classifier": InternVideo2ForVideoClassification,
    "features": InternVideo2Model,
    "video_text": InternVideo2VideoTextModel,
}
KEY_MAPS = {
    "classifier": INTERNVIDEO2_CLASSIFIER_KEY_MAP,
    "features": INTERNVIDEO2_FEATURES_KEY_MAP,
    "video_text": INTERNVIDEO2_VIDEO_TEXT_KEY_MAP,
}


def model_shapes(kind: str, config) -> dict[str, tuple[int, ...]]:
    """`{name: shape}` of our model's state dict, built on the meta device."""
    with torch.device("meta"):
        model = MODEL_CLASSES[kind](config)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def compare_shapes(converted: dict, expected: dict) -> dict[str, list]:
    return {
        "missing": sorted(set(expected) - set(converted)),
        "unexpected": sorted(set(converted) - set(expected)),
        "mismatched": sorted(
            (name, tuple(converted[name]), expected[name])
            for name in set(expected) & set(converted)
            if tuple(converted[name]) != tuple(expected[name])
        ),
    }


def check_manifest(shapes: dict[str, tuple[int, ...]], preset: str | None = None) -> dict:
    """Full-size check of a key/shape manifest of an original checkpoint, on the meta device: counts of unknown,
    missing, unexpected and shape-mismatched keys, and our parameter count against the original's minus what is
    dropped by name."""
    kind = detect_internvideo2_kind(shapes)
    record = preset_record(preset, kind)
    key_map = KEY_MAPS[kind]
    try:
        plan = key_map.plan(shapes)
    except UnknownKeysError as error:
        return {"kind": kind, "num_source_keys": len(shapes), "unknown": len(error.keys), "unknown_keys": error.keys}
    converted = convert_shapes(key_map, shapes)
    config = build_config(kind, shapes, record.gelu)
    with torch.device("meta"):
        model = MODEL_CLASSES[kind](config)
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    problems = compare_shapes(converted, expected)
    dropped = sum(torch.Size(shapes[key]).numel() for key in plan.dropped)
    return {
        "kind": kind,
        "num_source_keys": len(shapes),
        "unknown": 0,
        "dropped_keys": len(plan.dropped),
        **{name: len(value) for name, value in problems.items()},
        "params_ours": sum(parameter.numel() for parameter in model.parameters()),
        "params_source_minus_dropped": sum(torch.Size(shape).numel() for shape in shapes.values()) - dropped,
        "problems": problems,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Processor files
# ---------------------------------------------------------------------------------------------------------------------


def build_text_tokenizer(vocab_file: str | Path) -> PreTrainedTokenizerFast:
    """The original text tokenizer as a stock fast tokenizer: uncased BERT WordPiece (lower case, accents stripped)
    whose post-processor writes `[CLS] $A` with NO `[SEP]` (the repo's `build_inputs_with_special_tokens`). Saved
    as `tokenizer.json` with the generic class, so the template survives `save_pretrained` / `from_pretrained`."""
    vocab_file = Path(vocab_file)
    if not vocab_file.is_file():
        raise FileNotFoundError(f"vocab file not found: {vocab_file} (bert-large-uncased's vocab.txt)")
    vocab = {
        line.rstrip("\n"): index for index, line in enumerate(vocab_file.read_text(encoding="utf-8").splitlines())
    }
    bert = BertTokenizer(vocab=vocab, do_lower_case=True)
    backend = bert.backend_tokenizer
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", bert.cls_token_id), ("[SEP]", bert.sep_token_id)],
    )
    backend.no_truncation()
    backend.no_padding()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=512,
        padding_side="right",
        truncation_side="right",
    )


def build_image_processor(preset: InternVideo2Preset, vision_config: InternVideo2VisionConfig, **overrides):
    size = vision_config.image_size
    geometry = (
        {"size": {"shortest_edge": size}, "crop_size": {"height": size, "width": size}}
        if preset.eval_protocol["resize_mode"] == "shortest_edge_bilinear"
        else {"size": {"height": size, "width": size}}
    )
    return InternVideo2ImageProcessor(
        **{"num_frames": vision_config.num_frames, **preset.eval_protocol, **geometry, **overrides}
    )


def save_processor_files(folder: Path, preset: InternVideo2Preset, config, vocab_file=None) -> list[str]:
    if preset.kind != "video_text":
        build_image_processor(preset, config).save_pretrained(str(folder))
        return ["image processor saved"]
    image_processor = build_image_processor(preset, config.vision_config)
    if vocab_file is None:
        image_processor.save_pretrained(str(folder))
        return ["no --vocab given: image processor only (pass bert-large-uncased's vocab.txt for the text processor)"]
    InternVideo2Processor(image_processor, build_text_tokenizer(vocab_file)).save_pretrained(str(folder))
    return ["processor saved (image processor + [CLS]-only BERT tokenizer)"]


# ---------------------------------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class InternVideo2Source:
    """An opened original checkpoint: lazily read tensors, its kind, preset, key map and our config."""

    preset: InternVideo2Preset
    kind: str
    checkpoint: SourceTensors
    key_map: KeyMap
    config: object
    files: list[Path]
    gelu: str
    lora_scaling: None = None


def open_internvideo2_source(
    source, preset: str | None = None, gelu: str | None = None, labels=None, config_overrides: dict | None = None
) -> InternVideo2Source:
    """Open `source` lazily, tell what it is and build our config (nothing is written)."""
    files = internvideo2_checkpoint_files(source)
    checkpoint = SourceTensors(files)
    shapes = {key: tuple(checkpoint.shape(key)) for key in checkpoint}
    kind = detect_internvideo2_kind(shapes)
    record = preset_record(preset, kind)
    if record.kind != kind:
        raise ConversionError(f"{source} is a {kind} checkpoint but preset {record.name!r} is a {record.kind} model")
    if gelu is not None and gelu not in GELU:
        raise ConversionError(f"--gelu must be one of {sorted(GELU)}, got {gelu!r}")
    gelu = gelu or record.gelu
    config = build_config(kind, shapes, gelu, config_overrides, labels)
    return InternVideo2Source(record, kind, checkpoint, KEY_MAPS[kind], config, files, gelu)


def plan_writes(source: InternVideo2Source, dtype: torch.dtype | None, max_shard_size: int) -> WritePlan:
    """Map every key (unknown keys stop here), check names and shapes against the meta model, lay out the shards."""
    plan = source.key_map.plan(source.checkpoint.keys())
    specs = []
    for op in plan.operations:
        shapes = op.transform.shapes(tuple(source.checkpoint.shape(op.source)), len(op.targets))
        source_dtype = source.checkpoint.dtype(op.source)
        target_dtype = dtype if dtype is not None and source_dtype.is_floating_point else source_dtype
        specs.extend(TensorSpec(target, target_dtype, tuple(shape)) for target, shape in zip(op.targets, shapes))
    problems = compare_shapes({spec.name: spec.shape for spec in specs}, model_shapes(source.kind, source.config))
    if any(problems.values()):
        raise ConversionError(
            f"the converted weights would not match our model: { {k: v[:10] for k, v in problems.items() if v} }"
        )
    shards = plan_shards(specs, max_shard_size)
    return WritePlan(plan, specs, shards, shard_file_names(len(shards)))


def _written_shapes(folder: Path, shard_names: list[str]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for name in shard_names:
        for key, entry in read_safetensors_header(folder / name).items():
            if key != "__metadata__":
                shapes[key] = tuple(entry["shape"])
    return shapes


@dataclass
class InternVideo2ConversionResult:
    output: Path
    preset: str
    kind: str
    num_tensors: int
    total_bytes: int
    dropped: dict[str, str]
    messages: list[str]


def convert_internvideo2(
    source,
    output,
    preset: str | None = None,
    dtype=None,
    labels=None,
    vocab=None,
    gelu: str | None = None,
    config_overrides: dict | None = None,
    max_shard_size="5GB",
    overwrite: bool = False,
    progress: bool = True,
) -> InternVideo2ConversionResult:
    """
    Convert an original InternVideo2 checkpoint into a folder that `from_pretrained` loads (see the module docstring).

    Args:
        source: checkpoint file (`.pth`/`.pt`/`.bin`/`.safetensors`) or a folder holding one.
        output: folder to create. It may not be, contain or lie inside an input; an existing non-empty folder is
            replaced only with `overwrite` and only when `videochat` wrote it (see `output_safety`).
        preset: a preset name; default: the generic record of the detected kind (dimensions come from the shapes).
        dtype: cast floating tensors (`"bfloat16"`, `"float32"`, ...); default keeps the source dtypes.
        labels: classifier label file (one name per line, or JSON) for `id2label`.
        vocab: `vocab.txt` of bert-large-uncased (stage 2): writes the text tokenizer and the processor.
        gelu: `"exact"` or `"tanh"`; default: the preset's.
        config_overrides: config fields the shapes cannot tell, `{"vision": {...}, "text": {...}}`.
    """
    output, recovered = prepare_output_folder(output, [source, labels, vocab], overwrite)
    for note in recovered:
        print(f"note: {note}", file=sys.stderr)
    target_dtype = resolve_dtype(dtype)
    opened = open_internvideo2_source(source, preset, gelu, labels, config_overrides)
    write_plan = plan_writes(opened, target_dtype, parse_size(max_shard_size))

    prepare_output_folder(output, [source, labels, vocab, *opened.files], overwrite)
    staging = staging_folder(output)
    try:
        messages = write_folder(staging, opened, write_plan, target_dtype, vocab, progress)
        publish_folder(staging, output, "convert-internvideo2")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return InternVideo2ConversionResult(
        output,
        opened.preset.name,
        opened.kind,
        len(write_plan.specs),
        write_plan.total_bytes,
        write_plan.plan.dropped,
        messages,
    )


def write_folder(
    folder: Path,
    opened: InternVideo2Source,
    write_plan: WritePlan,
    target_dtype: torch.dtype | None,
    vocab=None,
    progress: bool = True,
) -> list[str]:
    """Weights, processor files and `config.json` (last: a folder without it is never loadable) into `folder`;
    returns the notes for the user."""
    write_weights(folder, opened, write_plan, progress)
    problems = compare_shapes(
        _written_shapes(folder, write_plan.shard_names), model_shapes(opened.kind, opened.config)
    )
    if any(problems.values()):
        raise ConversionError(f"written weights do not match the model: {problems}")
    messages = [
        f"block MLP activation: {GELU_NOTES[opened.gelu]} (--gelu to change)",
        *opened.preset.notes,
        *save_processor_files(folder, opened.preset, opened.config, vocab),
    ]
    config = opened.config
    config.dtype = target_dtype or _dominant_dtype(write_plan.specs)
    config.architectures = [MODEL_CLASSES[opened.kind].__name__]
    config.save_pretrained(str(folder))
    return messages


def _dominant_dtype(specs: list[TensorSpec]) -> torch.dtype:
    sizes: dict[torch.dtype, int] = {}
    for spec in specs:
        if spec.dtype.is_floating_point:
            sizes[spec.dtype] = sizes.get(spec.dtype, 0) + spec.nbytes
    return max(sizes, key=sizes.get) if sizes else torch.float32


__all__ = [
    "GELU",
    "build_config",
    "build_text_tokenizer",
    "check_manifest",
    "convert_internvideo2",
    "factory_fields",
    "open_internvideo2_source",
    "preset_record",
    "read_labels",
]
