# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`videochat demo`: the whole path on a tiny model, offline, in well under a minute on two CPU cores.

1. writes a tiny InternVideo2-Chat-8B-HD checkpoint with RANDOM weights in the ORIGINAL layout (original key names,
   PEFT-wrapped LLM with unmerged LoRA, original `config.json`, tokenizers trained on the spot);
2. converts it with `videochat convert` into our safetensors folder;
3. generates an H.264 video with PyAV;
4. loads the converted folder with `AutoProcessor` / `AutoModelForImageTextToText` and streams an answer.

The weights are random, so the answer is gibberish: the demo shows the machinery, not the model's quality.
"""

import argparse
import json
import shutil
import string
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from ..convert.converter import convert
from ..convert.output_safety import MARKER_NAME, read_marker
from .chat import answer, load_converted


DEMO_DIMS = {
    "vision": 64,
    "vision_layers": 2,
    "vision_heads": 4,
    "qformer": 64,
    "qformer_layers": 2,
    "qformer_heads": 4,
    "llm": 64,
    "llm_layers": 2,
    "llm_heads": 4,
    "llm_kv_heads": 2,
    "lora_r": 4,
}
DEMO_CORPUS = [
    "[INST] <Video></Video> Describe the action step by step. [/INST] A person walks to the door and opens it.",
    "You are a helpful video assistant. The video contains 8 frames sampled at 0.1, 0.5 seconds.",
    "a red square moves from the left to the right over a blue background while the camera stays still",
    "watch the video and answer the question. what is happening in the video? describe it in detail.",
] * 30


def train_llm_tokenizer(folder: Path, vocab_size: int = 300) -> None:
    """A tiny Mistral-style tokenizer (Metaspace BPE, `<unk>`/`<s>`/`</s>`/`[INST]`/`[/INST]`, BOS added)."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    # Every printable ASCII character is in the vocabulary: an unknown character would become `<unk>` (id 0), the
    # visual placeholder id, and make the prompt's placeholder count wrong.
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>", "[INST]", "[/INST]"],
        initial_alphabet=sorted(set(string.printable) - set(string.whitespace) | {"▁"}),
    )
    tokenizer.train_from_iterator(DEMO_CORPUS, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<unk>"
    )
    fast.save_pretrained(folder)


def write_qformer_vocab(folder: Path) -> int:
    words = sorted({word.strip(".,?[]<>/").lower() for line in DEMO_CORPUS for word in line.split()} - {""})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?", *words]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return len(vocab)


def _embedding_and_projection_shapes(dims: dict) -> dict[str, tuple[int, ...]]:
    """The keys outside the block stacks: query tokens, vision embeddings and final norm, Q-Former <-> LLM
    projections (in the original state dict's order)."""
    v, q, h = dims["vision"], dims["qformer"], dims["llm"]
    return {
        "query_tokens": (1, 32, q),
        "extra_query_tokens": (1, 64, q),
        "vision_encoder.cls_token": (1, 1, v),
        "vision_encoder.pos_embed": (1, 1 + 8 * 256, v),
        "vision_encoder.img_pos_embed": (1, 257, v),
        "vision_encoder.patch_embed.proj.weight": (v, 3, 1, 14, 14),
        "vision_encoder.patch_embed.proj.bias": (v,),
        "vision_layernorm.weight": (v,),
        "vision_layernorm.bias": (v,),
        "project_up.weight": (h, q),
        "project_up.bias": (h,),
        "project_down.weight": (q, h),
        "project_down.bias": (q,),
    }


def _vision_block_shapes(dims: dict) -> dict[str, tuple[int, ...]]:
    """The InternVideo2 vision tower's transformer blocks (layer scale, QK-norm, no qkv bias)."""
    v = dims["vision"]
    mlp = int(v * 48 / 11)
    shapes = {}
    for i in range(dims["vision_layers"]):
        block = f"vision_encoder.blocks.{i}"
        shapes.update(
            {
                f"{block}.ls1": (v,),
                f"{block}.ls2": (v,),
                f"{block}.norm1.weight": (v,),
                f"{block}.norm2.weight": (v,),
                f"{block}.attn.qkv.weight": (3 * v, v),
                f"{block}.attn.proj.weight": (v, v),
                f"{block}.attn.proj.bias": (v,),
                f"{block}.attn.q_norm.weight": (v,),
                f"{block}.attn.k_norm.weight": (v,),
                f"{block}.mlp.fc1.weight": (mlp, v),
                f"{block}.mlp.fc1.bias": (mlp,),
                f"{block}.mlp.fc2.weight": (v, mlp),
                f"{block}.mlp.fc2.bias": (v,),
            }
        )
    return shapes


def _qformer_attention_shapes(prefix: str, q: int, key_width: int) -> dict[str, tuple[int, ...]]:
    """One BERT attention (`attention` or `crossattention`): query/key/value and the output dense + LayerNorm."""
    shapes = {}
    for name, in_width in (("query", q), ("key", key_width), ("value", key_width)):
        shapes[f"{prefix}.self.{name}.weight"] = (q, in_width)
        shapes[f"{prefix}.self.{name}.bias"] = (q,)
    shapes.update(
        {
            f"{prefix}.output.dense.weight": (q, q),
            f"{prefix}.output.dense.bias": (q,),
            f"{prefix}.output.LayerNorm.weight": (q,),
            f"{prefix}.output.LayerNorm.bias": (q,),
        }
    )
    return shapes


def _qformer_layer_shapes(layer: str, index: int, q: int, v: int) -> dict[str, tuple[int, ...]]:
    """One Q-Former layer: self-attention, cross-attention to the vision tower on even layers, and the two
    feed-forwards (text and `_query`)."""
    shapes = _qformer_attention_shapes(f"{layer}.attention", q, q)
    if index % 2 == 0:
        shapes.update(_qformer_attention_shapes(f"{layer}.crossattention", q, v))
    for suffix in ("", "_query"):
        shapes.update(
            {
                f"{layer}.intermediate{suffix}.dense.weight": (2 * q, q),
                f"{layer}.intermediate{suffix}.dense.bias": (2 * q,),
                f"{layer}.output{suffix}.dense.weight": (q, 2 * q),
                f"{layer}.output{suffix}.dense.bias": (q,),
                f"{layer}.output{suffix}.LayerNorm.weight": (q,),
                f"{layer}.output{suffix}.LayerNorm.bias": (q,),
            }
        )
    return shapes


def _qformer_shapes(dims: dict, qformer_vocab: int) -> dict[str, tuple[int, ...]]:
    """The Q-Former's BERT: embeddings, then its layers."""
    q, bert = dims["qformer"], "qformer.bert"
    shapes = {
        f"{bert}.embeddings.word_embeddings.weight": (qformer_vocab, q),
        f"{bert}.embeddings.position_embeddings.weight": (64, q),
        f"{bert}.embeddings.LayerNorm.weight": (q,),
        f"{bert}.embeddings.LayerNorm.bias": (q,),
    }
    for i in range(dims["qformer_layers"]):
        shapes.update(_qformer_layer_shapes(f"{bert}.encoder.layer.{i}", i, q, dims["vision"]))
    return shapes


def _lora_wrapped_shapes(adapted: dict[str, tuple[int, int]], r: int) -> dict[str, tuple[int, ...]]:
    """Each LoRA-adapted linear's base weight and its unmerged peft-0.5 `lora_A` / `lora_B` (adapter `default`)."""
    shapes = {}
    for module, (out_features, in_features) in adapted.items():
        shapes.update(
            {
                f"{module}.weight": (out_features, in_features),
                f"{module}.lora_A.default.weight": (r, in_features),
                f"{module}.lora_B.default.weight": (out_features, r),
            }
        )
    return shapes


def _llm_with_lora_shapes(dims: dict, llm_vocab: int) -> dict[str, tuple[int, ...]]:
    """The PEFT-wrapped Mistral LLM: RMSNorms, LoRA-adapted attention/MLP linears and `lm_head`, embeddings."""
    h, lm = dims["llm"], "lm.base_model.model"
    kv = h // dims["llm_heads"] * dims["llm_kv_heads"]
    mlp = 2 * h
    norms, adapted = {}, {}
    for i in range(dims["llm_layers"]):
        layer = f"{lm}.model.layers.{i}"
        adapted.update(
            {
                f"{layer}.self_attn.q_proj": (h, h),
                f"{layer}.self_attn.k_proj": (kv, h),
                f"{layer}.self_attn.v_proj": (kv, h),
                f"{layer}.self_attn.o_proj": (h, h),
                f"{layer}.mlp.gate_proj": (mlp, h),
                f"{layer}.mlp.up_proj": (mlp, h),
                f"{layer}.mlp.down_proj": (h, mlp),
            }
        )
        norms.update({f"{layer}.input_layernorm.weight": (h,), f"{layer}.post_attention_layernorm.weight": (h,)})
    adapted[f"{lm}.lm_head"] = (llm_vocab, h)
    return {
        **norms,
        **_lora_wrapped_shapes(adapted, dims["lora_r"]),
        f"{lm}.model.embed_tokens.weight": (llm_vocab, h),
        f"{lm}.model.norm.weight": (h,),
    }


def original_internvideo2_chat_shapes(dims: dict, llm_vocab: int, qformer_vocab: int) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the ORIGINAL InternVideo2-Chat state dict (hub naming, peft-0.5 LoRA layout) at `dims`.

    The order is the order the demo draws the random weights in, so it is part of the demo checkpoint's bytes."""
    return {
        **_embedding_and_projection_shapes(dims),
        **_vision_block_shapes(dims),
        **_qformer_shapes(dims, qformer_vocab),
        **_llm_with_lora_shapes(dims, llm_vocab),
    }


def _write_llm_tokenizer(folder: Path, llm_tokenizer: Path | None, vocab_size: int) -> None:
    if llm_tokenizer is None:
        train_llm_tokenizer(folder, vocab_size=vocab_size)
    else:
        shutil.copytree(llm_tokenizer, folder, dirs_exist_ok=True)


def _mistral_lm_config(dims: dict, vocab_size: int) -> dict:
    """The original folder's `lm_config/config.json`: a tiny Mistral."""
    return {
        "architectures": ["MistralForCausalLM"],
        "model_type": "mistral",
        "hidden_size": dims["llm"],
        "intermediate_size": 2 * dims["llm"],
        "num_hidden_layers": dims["llm_layers"],
        "num_attention_heads": dims["llm_heads"],
        "num_key_value_heads": dims["llm_kv_heads"],
        "head_dim": dims["llm"] // dims["llm_heads"],
        "vocab_size": vocab_size,
        "rms_norm_eps": 1e-5,
        "rope_theta": 1e6,
        "max_position_embeddings": 2048,
        "sliding_window": None,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": False,
    }


NORM_WEIGHT_SUFFIXES = ("norm1.weight", "norm2.weight", "LayerNorm.weight", "norm.weight", "layernorm.weight")


def random_original_state_dict(dims: dict, llm_vocab: int, qformer_vocab: int, seed: int) -> dict[str, torch.Tensor]:
    """Small random weights (norm weights around 1) drawn in `original_internvideo2_chat_shapes` order, plus the
    Q-Former's `position_ids` buffer."""
    generator = torch.Generator().manual_seed(seed)
    state_dict = {}
    for key, shape in original_internvideo2_chat_shapes(dims, llm_vocab, qformer_vocab).items():
        scale = 1.0 if key.endswith(NORM_WEIGHT_SUFFIXES) else 0.0
        state_dict[key] = scale + 0.05 * torch.randn(shape, generator=generator)
    state_dict["qformer.bert.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
    return state_dict


def _original_model_config(dims: dict) -> dict:
    """`original_config.json`'s `model_config`: the original code's own config at the released sizes."""
    return {
        "vision_encoder": {
            "name": "internvideo2-1B",
            "img_size": 224,
            "patch_size": 14,
            "d_model": dims["vision"],
            "encoder_embed_dim": dims["vision"],
            "num_frames": 8,
            "tubelet_size": 1,
            "sep_image_video_pos_embed": True,
            "x_vis_return_idx": -2,
            "x_vis_only": True,
        },
        "bridge": {"name": "qformer", "num_query_token": 32, "extra_num_query_token": 64},
        "llm": {"name": "mistral_7b", "use_lora": True, "lora_r": dims["lora_r"], "lora_alpha": 2 * dims["lora_r"]},
    }


def _tiny_overrides(dims: dict, qformer_vocab: int) -> dict:
    """`original_config.json`'s `tiny_overrides`: how the tiny vision tower and Q-Former BERT differ from the
    released ones."""
    return {
        "vision_encoder_ctor": {
            "embed_dim": dims["vision"],
            "depth": dims["vision_layers"] + 1,
            "num_heads": dims["vision_heads"],
            "mlp_ratio": "48/11",
            "qkv_bias": False,
            "qk_normalization": True,
            "init_values": 1e-5,
            "blocks_built": dims["vision_layers"],
        },
        "qformer_bert_config (replaces bert-base-uncased)": {
            "vocab_size": qformer_vocab - 1,
            "hidden_size": dims["qformer"],
            "num_hidden_layers": dims["qformer_layers"],
            "num_attention_heads": dims["qformer_heads"],
            "intermediate_size": 2 * dims["qformer"],
            "max_position_embeddings": 64,
            "layer_norm_eps": 1e-12,
        },
        "qformer_vocab_after_[DEC]": qformer_vocab,
    }


def _original_config(dims: dict, qformer_vocab: int, hd: bool = True) -> dict:
    """The original folder's `original_config.json` (HD or non-HD InternVideo2-Chat-8B at `dims`)."""
    return {
        "architectures": ["InternVideo2_VideoChat2"],
        "model_cls": "InternVideo2_VideoChat2",
        "variant": "HD (demo)" if hd else "non-HD (demo)",
        "model_config": _original_model_config(dims),
        "tiny_overrides": _tiny_overrides(dims, qformer_vocab),
    }


def write_original_checkpoint(
    folder: Path,
    seed: int = 0,
    dims: dict = DEMO_DIMS,
    llm_tokenizer: Path | None = None,
    llm_vocab_size: int = 300,
    hd: bool = True,
) -> Path:
    """Write a random tiny InternVideo2-Chat-8B-HD checkpoint in the original layout (an original folder; `hd=False`
    describes it as the non-HD InternVideo2-Chat-8B, same weights). The LLM tokenizer is a tiny one trained on the
    spot, or the files of `llm_tokenizer` (e.g. a real sentencepiece `tokenizer.model` + `tokenizer_config.json`,
    whose vocabulary has `llm_vocab_size` pieces)."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_llm_tokenizer(folder / "llm_tokenizer", llm_tokenizer, llm_vocab_size)
    qformer_vocab = write_qformer_vocab(folder / "qformer_tokenizer") + 1  # + [DEC], added by the original
    (folder / "lm_config").mkdir(exist_ok=True)
    (folder / "lm_config" / "config.json").write_text(json.dumps(_mistral_lm_config(dims, llm_vocab_size), indent=2))
    state_dict = random_original_state_dict(dims, llm_vocab_size, qformer_vocab, seed)
    save_file(state_dict, folder / "original_checkpoint.safetensors", metadata={"format": "pt"})
    (folder / "original_config.json").write_text(json.dumps(_original_config(dims, qformer_vocab, hd), indent=2))
    return folder


def write_demo_video(path: Path, num_frames: int = 48, fps: int = 12, width: int = 320, height: int = 180) -> Path:
    """An H.264 clip of a red square crossing a blue background."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(num_frames):
            frame = np.zeros((height, width, 3), dtype=np.uint8)
            frame[..., 2] = 160
            left = int(index * (width - 40) / max(1, num_frames - 1))
            frame[70:110, left : left + 40] = (220, 30, 30)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


DEMO_ENTRIES = ("original", "converted", "demo.mp4", MARKER_NAME)


def check_workdir(workdir: Path) -> None:
    """`--workdir` must be new, empty, or a folder an earlier `videochat demo` wrote (whose files it rewrites)."""
    if workdir.exists() and not workdir.is_dir():
        raise ValueError(f"--workdir {workdir} is a file; name a new or empty folder")
    if not workdir.exists() or not any(workdir.iterdir()):
        return
    marker = read_marker(workdir)
    if marker is None or marker.get("written_by") != "videochat demo":
        raise ValueError(
            f"--workdir {workdir} is not empty and was not written by `videochat demo`; the demo would overwrite "
            "files there. Name a new or empty folder"
        )
    foreign = sorted(
        entry.name
        for entry in workdir.iterdir()
        if entry.name not in DEMO_ENTRIES and not entry.name.startswith(".converted.")
    )
    if foreign:
        raise ValueError(
            f"--workdir {workdir} holds files the demo did not write ({', '.join(foreign[:5])}); name a new or empty "
            "folder"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videochat demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--question", default="Describe the action step by step.")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.workdir is not None:
        check_workdir(args.workdir.expanduser())
    workdir = args.workdir.expanduser() if args.workdir else Path(tempfile.mkdtemp(prefix="videochat-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER_NAME).write_text(json.dumps({"written_by": "videochat demo", "files": []}) + "\n")
    print(
        "videochat demo -- NOTE: the model has RANDOM weights; expect a gibberish answer. It shows the pipeline:\n"
        "original-layout checkpoint -> conversion -> processor -> streamed generate().",
        flush=True,
    )
    timings = {}
    start = time.perf_counter()
    original = write_original_checkpoint(workdir / "original", seed=args.seed)
    timings["write original checkpoint"] = time.perf_counter() - start
    print(f"[1/4] tiny InternVideo2-Chat-8B-HD checkpoint in the original layout: {original}", flush=True)

    start = time.perf_counter()
    converted = workdir / "converted"
    convert(original, converted, preset="internvideo2-chat-8b-hd", overwrite=True)  # a previous demo's folder
    timings["convert"] = time.perf_counter() - start
    print(f"[2/4] converted with `videochat convert`: {converted}", flush=True)

    start = time.perf_counter()
    video = write_demo_video(workdir / "demo.mp4")
    timings["write H.264 video"] = time.perf_counter() - start
    print(f"[3/4] generated an H.264 video: {video}", flush=True)

    start = time.perf_counter()
    model, processor = load_converted(converted, device="cpu", dtype="float32")
    timings["load"] = time.perf_counter() - start
    print(f"[4/4] question: {args.question}\nanswer: ", end="", flush=True)
    torch.manual_seed(args.seed)
    result = answer(model, processor, video, args.question, max_new_tokens=args.max_new_tokens, stream=True)
    timings["answer (prefill + decode)"] = result["seconds"]
    print("\n\ntimings:")
    for name, seconds in timings.items():
        print(f"  {name:<28} {seconds:6.2f} s")
    print(f"  {'tokens generated':<28} {result['num_new_tokens']:6d}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
        print("(temporary files removed)")
    else:
        print(f"files kept in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
