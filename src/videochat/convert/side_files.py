# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Everything a converted folder holds besides the weights: the processor (image processor, LLM tokenizer with the
original ids, Q-Former tokenizer, chat template), the model card with input hashes and the parity report."""

import hashlib
import json
import shutil
import tempfile
import threading
from importlib.metadata import version
from pathlib import Path

import torch
import transformers
from transformers import AutoTokenizer, BertTokenizer

from ..processing_videochat import (
    VIDEO_PREPROCESSOR_CONFIG,
    VIDEO_PROCESSOR_TYPE,
    placeholder_token_id,
    prepare_qformer_tokenizer,
)
from .presets import Preset, build_image_processor, build_processor, load_chat_template
from .sources import ConversionSource
from .tokenizer import build_tokenizer
from .writer import TensorSpec


def dominant_dtype(specs: list[TensorSpec]) -> torch.dtype:
    totals: dict[torch.dtype, int] = {}
    for spec in specs:
        if spec.dtype.is_floating_point:
            totals[spec.dtype] = totals.get(spec.dtype, 0) + spec.nbytes
    return max(totals, key=totals.get) if totals else torch.float32


TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "added_tokens.json",
    "chat_template.jinja",
    "vocab.txt",
)


def _load_tokenizer_isolated(tokenizer_dir: Path):
    """`AutoTokenizer` on a copy of the tokenizer files only: a hub snapshot's remote-code `config.json` (auto_map)
    must never be consulted, let alone executed."""
    with tempfile.TemporaryDirectory() as isolated:
        for name in TOKENIZER_FILES:
            if (tokenizer_dir / name).is_file():
                shutil.copy(tokenizer_dir / name, Path(isolated) / name)
        return AutoTokenizer.from_pretrained(isolated, trust_remote_code=False)


def _load_llm_tokenizer(tokenizer_dir: Path, preset: Preset):
    """The exact-id sentencepiece conversion when the folder has a `tokenizer.model` and the preset's LLM has one."""
    if (tokenizer_dir / "tokenizer.model").is_file() and preset.tokenizer is not None:
        return build_tokenizer(tokenizer_dir, preset.name)
    return _load_tokenizer_isolated(tokenizer_dir)


def _load_qformer_tokenizer(folder: Path):
    if (folder / "tokenizer_config.json").is_file():
        tokenizer = _load_tokenizer_isolated(folder)
    else:
        tokenizer = BertTokenizer(str(folder / "vocab.txt"), truncation_side="left")
    return prepare_qformer_tokenizer(tokenizer)


def save_processor(folder: Path, source: ConversionSource) -> list[str]:
    """Save the processor (image processor, LLM tokenizer with the `<video>` / `<image>` placeholder tokens, Q-Former
    tokenizer with `[DEC]`, chat template) when its pieces are available, and set the config's placeholder ids to
    the tokenizer's; returns messages describing what was skipped."""
    name, config = source.preset.name, source.config
    if source.tokenizer_dir is None:
        (folder / "chat_template.jinja").write_text(load_chat_template(name))
        vocab_size = config.text_config.vocab_size
        config.video_token_id, config.image_token_id = vocab_size, vocab_size + 1
        return [
            "processor and LLM tokenizer not saved: no LLM tokenizer found (pass --tokenizer DIR); the placeholder "
            f"ids are {vocab_size} and {vocab_size + 1}, past the LLM vocabulary: add `<video>` and `<image>` "
            "to your tokenizer with these ids"
        ]
    tokenizer = _load_llm_tokenizer(source.tokenizer_dir, source.preset)
    tokenizer.padding_side = "left"
    config.video_token_id = placeholder_token_id(tokenizer, "<video>")
    config.image_token_id = placeholder_token_id(tokenizer, "<image>")
    qformer_tokenizer = _load_qformer_tokenizer(source.qformer_tokenizer_dir) if source.qformer_tokenizer_dir else None
    if qformer_tokenizer is None and config.qformer_takes_text:
        tokenizer.save_pretrained(str(folder))
        (folder / "chat_template.jinja").write_text(load_chat_template(name))
        return [
            "processor not saved: no Q-Former tokenizer (pass --qformer-tokenizer DIR with bert-base-uncased's "
            "vocab.txt); the LLM tokenizer and chat template were saved"
        ]
    messages = []
    if (
        qformer_tokenizer is not None
        and config.qformer_takes_text
        and len(qformer_tokenizer) != config.qformer_config.vocab_size
    ):
        messages.append(
            f"warning: the Q-Former tokenizer has {len(qformer_tokenizer)} tokens but the Q-Former "
            f"vocabulary has {config.qformer_config.vocab_size} rows"
        )
    image_processor = build_image_processor(name, num_frames=int(config.vision_config.num_frames))
    processor = build_processor(
        name,
        tokenizer,
        qformer_tokenizer,
        image_processor=image_processor,
        num_query_tokens=config.num_visual_queries,
        video_token_id=config.video_token_id,
        image_token_id=config.image_token_id,
    )
    processor.save_pretrained(str(folder))
    write_video_preprocessor_config(folder, processor)
    return messages


def write_video_preprocessor_config(folder: Path, processor) -> None:
    """`video_preprocessor_config.json`: names the video processor type serving engines pick a video loader by (the
    vLLM plugin's loader samples `num_frames` frames as the originals do); transformers itself does not read it."""
    settings = {"video_processor_type": VIDEO_PROCESSOR_TYPE, "num_frames": processor.image_processor.num_frames}
    (folder / VIDEO_PREPROCESSOR_CONFIG).write_text(json.dumps(settings, indent=2) + "\n")


def sha256_of(path: Path, chunk_size: int = 8 * 2**20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class BackgroundHashes:
    """sha256 of the input files, computed in a thread while the conversion runs (hashlib releases the GIL)."""

    def __init__(self, paths: list[Path]):
        self.paths = list(dict.fromkeys(paths))
        self.result: dict[str, str] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            for path in self.paths:
                self.result[str(path)] = sha256_of(path)
        except BaseException as error:  # reported by join()
            self._error = error

    def join(self) -> dict[str, str]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.result


MODEL_CARD_TEMPLATE = """---
library_name: transformers
pipeline_tag: image-text-to-text
tags:
- video-text-to-text
- videochat
---

# {preset} (converted)

Transformers-native conversion of the original OpenGVLab checkpoint (`{preset}`), loadable without
`trust_remote_code`. **Requires** `pip install videochat` (the package registers the model, config and processor
with the transformers Auto classes on `import videochat`).

## Usage

```python
import torch
import videochat  # registers the VideoChat classes
from transformers import AutoModelForImageTextToText, AutoProcessor

model = AutoModelForImageTextToText.from_pretrained("{repo}", dtype=torch.bfloat16)
processor = AutoProcessor.from_pretrained("{repo}")
messages = [{{"role": "user", "content": [{{"type": "video", "path": "video.mp4"}},
                                         {{"type": "text", "text": "Describe the video in detail."}}]}}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                       return_tensors="pt").to(model.device, torch.bfloat16)
output = model.generate(**inputs, do_sample=False, max_new_tokens=200)
print(processor.batch_decode(output[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0])
```

`generation_config.json` holds the original chat defaults of this model.

## Provenance

Converted with `videochat convert` (videochat {version}, transformers {transformers_version}, torch {torch_version}).
Weights are stored under our names (no conversion mapping is registered); dtypes are those of the source{dtype_note}.

| input | sha256 |
|---|---|
{inputs}

{notes}
## Parity report

{parity}
"""


def write_model_card(
    folder: Path,
    source: ConversionSource,
    hashes: dict[str, str],
    parity: str,
    repo: str | None,
    dtype: torch.dtype | None,
    messages: list[str],
) -> None:
    rows = "\n".join(f"| `{path}` | `{digest}` |" for path, digest in hashes.items())
    notes = [*source.notes, *messages]
    notes_text = ("## Notes\n\n" + "\n".join(f"- {note}" for note in notes) + "\n") if notes else ""
    (folder / "README.md").write_text(
        MODEL_CARD_TEMPLATE.format(
            preset=source.preset.name,
            repo=repo or "PATH_TO_THIS_FOLDER",
            version=version("videochat"),
            transformers_version=transformers.__version__,
            torch_version=torch.__version__,
            dtype_note=f" cast to {str(dtype).removeprefix('torch.')}" if dtype is not None else "",
            inputs=rows,
            notes=notes_text,
            parity=parity,
        )
    )
