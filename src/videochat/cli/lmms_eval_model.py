# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
lmms-eval model `videochat`: evaluates a converted VideoChat folder with unmodified lmms-eval (tested with 0.7.3).

Registered through the entry-point group `lmms_eval.models` (see `setup.cfg`), so with this package and lmms-eval
installed a plain command line finds it:

    lmms-eval --model videochat --model_args pretrained=path/to/converted,device=cpu,dtype=float32 \\
        --tasks mvbench --batch_size 4 --output_path results/ --log_samples

Unlike lmms-eval's generic `huggingface` model (which loads `AutoModel`, has no `generate`, renders every prompt of a
batch with the first request's `doc_to_messages` and ignores `until`), it renders and tokenizes each request's own
conversation with `processor.apply_chat_template(..., tokenize=True)`, so a system message reaches the Q-Former as on
our own path; it loads the generation class, cuts answers at the task's `until` strings, and batches requests with
equal generation settings in their original order, so batch sizes 1, 2 and 4 answer as one `generate()` per
conversation.

model_args: `pretrained` (folder), `device` (default: cuda when available, else cpu), `dtype` (`float32`,
`bfloat16`, `float16` or `auto`; default `float32` on CPU, `bfloat16` on GPU), `batch_size`, `num_frames` (frames
per video, default: the processor's), `system_prompt` (added when a conversation has none), `answer_prompt`
(pre-filled answer, e.g. `Best option:(`), `max_new_tokens` (when the task sets none). Unknown arguments are an error.

This module imports lmms-eval; nothing else in the package does.
"""

import json

import torch
from lmms_eval.api.instance import GenerationResult, TokenCounts
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest
from lmms_eval.protocol import ChatMessages
from tqdm import tqdm

from ..modeling_videochat import VideoChatForConditionalGeneration
from ..processing_videochat import VideoChatProcessor


MODEL_ID = "videochat"
DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
# Generation settings of lmms-eval tasks this model reads; requests are batched only with equal settings.
GENERATION_KEYS = ("max_new_tokens", "temperature", "top_p", "top_k", "num_beams", "do_sample", "until")


def lmms_eval_manifest() -> ModelManifest:
    """Entry point of the `lmms_eval.models` group: the chat model `videochat`."""
    return ModelManifest(model_id=MODEL_ID, chat_class_path=f"{__name__}.VideoChatLMMsEval")


class VideoChatLMMsEval(lmms):
    """lmms-eval chat model around `VideoChatForConditionalGeneration` + `VideoChatProcessor`."""

    is_simple = False

    def __init__(
        self,
        pretrained: str,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | str = 1,
        max_batch_size: int | None = None,
        num_frames: int | None = None,
        system_prompt: str | None = None,
        answer_prompt: str | None = None,
        max_new_tokens: int = 256,
        **kwargs,
    ) -> None:
        super().__init__()
        if kwargs:
            raise TypeError(
                f"model `{MODEL_ID}` got unknown model_args {sorted(kwargs)}; it takes pretrained, device, dtype, "
                "batch_size, num_frames, system_prompt, answer_prompt, max_new_tokens."
            )
        if str(batch_size).startswith("auto"):
            raise ValueError(f"model `{MODEL_ID}` needs an integer --batch_size, got {batch_size!r}.")
        self._batch_size = int(batch_size)
        if self._batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}.")
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._model = VideoChatForConditionalGeneration.from_pretrained(pretrained, dtype=self._torch_dtype(dtype)).to(
            self._device
        )
        self._model.eval()
        self.processor = VideoChatProcessor.from_pretrained(pretrained)
        self.num_frames = None if num_frames in (None, "") else int(num_frames)
        self.system_prompt = system_prompt.replace("\\n", "\n") if system_prompt else None
        self.answer_prompt = answer_prompt or None
        self.default_max_new_tokens = int(max_new_tokens)

    def _torch_dtype(self, dtype: str | None):
        if dtype in (None, ""):
            return torch.float32 if self._device.type == "cpu" else torch.bfloat16
        if dtype == "auto":
            return "auto"
        if dtype not in DTYPES:
            raise ValueError(f"Unknown dtype {dtype!r}; choose one of {sorted(DTYPES)} or 'auto'.")
        return DTYPES[dtype]

    @property
    def model(self):
        return self._model

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def device(self):
        return self._device

    @property
    def eot_token_id(self):
        return self.tokenizer.eos_token_id

    def loglikelihood(self, requests):
        raise NotImplementedError(f"model `{MODEL_ID}` only generates (output_type: generate_until).")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError(f"model `{MODEL_ID}` does not support multi-round generation.")

    def generate_until(self, requests) -> list:
        """One answer per request; requests with equal generation settings (and all with or all without a system
        message, which the processor needs in one batch) are batched in their original order."""
        conversations = [self._conversation(request) for request in requests]
        groups: dict[tuple, list[int]] = {}
        for index, request in enumerate(requests):
            has_system = any(message["role"] == "system" for message in conversations[index])
            groups.setdefault((settings_key(request.args[2]), has_system), []).append(index)
        results: list = [None] * len(requests)
        progress = tqdm(total=len(requests), disable=self.rank != 0, desc="videochat generate")
        for indices in groups.values():
            gen_kwargs = dict(requests[indices[0]].args[2] or {})
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                answers = self._generate([conversations[index] for index in chunk], gen_kwargs)
                for index, (text, num_input, num_output) in zip(chunk, answers):
                    counts = TokenCounts(input_tokens=num_input, output_tokens=num_output)
                    results[index] = GenerationResult(text=text, token_counts=counts)
                    self.cache_hook.add_partial("generate_until", (requests[index].args[0], gen_kwargs), text)
                progress.update(len(chunk))
        progress.close()
        return results

    def _conversation(self, request) -> list[dict]:
        """The request's chat messages (its task's `doc_to_messages`) as transformers chat messages."""
        _, doc_to_messages, _, doc_id, task, split = request.args
        messages = ChatMessages(messages=doc_to_messages(self.task_dict[task][split][doc_id])).to_hf_messages()
        for message in messages:
            for block in message["content"]:
                if "video_start" in block or "video_end" in block:
                    raise NotImplementedError(
                        f"model `{MODEL_ID}`: video blocks with start/end times are not supported yet."
                    )
        if self.system_prompt and not any(message["role"] == "system" for message in messages):
            messages = [{"role": "system", "content": [{"type": "text", "text": self.system_prompt}]}, *messages]
        return messages

    def _generate(self, conversations: list, gen_kwargs: dict) -> list[tuple[str, int, int]]:
        """(answer, prompt tokens, generated tokens) per conversation."""
        processor_kwargs = {"padding": True}
        if self.num_frames is not None:
            processor_kwargs["num_frames"] = self.num_frames
        template_kwargs = {"answer_prompt": self.answer_prompt} if self.answer_prompt else {}
        batch = self.processor.apply_chat_template(
            conversations,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs=processor_kwargs,
            **template_kwargs,
        ).to(self.device)
        if self.model.dtype != torch.float32:
            batch = batch.to(dtype=self.model.dtype)
        pad_token_id = self.processor.segment_tokenizer.pad_token_id
        generation = {
            "max_new_tokens": int(gen_kwargs.get("max_new_tokens") or self.default_max_new_tokens),
            "num_beams": int(gen_kwargs.get("num_beams") or 1),
            "pad_token_id": pad_token_id,
        }
        temperature = float(gen_kwargs.get("temperature") or 0.0)
        if gen_kwargs.get("do_sample") or temperature > 0:
            generation.update(
                do_sample=True, temperature=temperature or 1.0, top_p=float(gen_kwargs.get("top_p") or 1.0)
            )
            if gen_kwargs.get("top_k") is not None:
                generation["top_k"] = int(gen_kwargs["top_k"])
        else:
            generation["do_sample"] = False
        with torch.inference_mode():
            output = self.model.generate(**batch, **generation)
        new_tokens = output[:, batch["input_ids"].shape[1] :].cpu()
        until = gen_kwargs.get("until") or []
        until = [until] if isinstance(until, str) else [stop for stop in until if stop]
        answers = []
        for row, prompt_length in zip(new_tokens, batch["attention_mask"].sum(dim=1).tolist()):
            ids = row.tolist()
            ids = ids[: length_until_eos(ids, self.model.generation_config.eos_token_id)]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            # `until` cuts the decoded text: transformers' `stop_strings` rejects strings its vocabulary cannot produce
            for stop in until:
                text = text.split(stop)[0]
            answers.append((text, int(prompt_length), len(ids)))
        return answers


def settings_key(gen_kwargs) -> str:
    return json.dumps({key: (gen_kwargs or {}).get(key) for key in GENERATION_KEYS}, sort_keys=True, default=str)


def length_until_eos(ids: list[int], eos_token_id) -> int:
    """Generated length up to and including the first EOS (the rest of a finished row is padding)."""
    eos_ids = set(eos_token_id if isinstance(eos_token_id, (list, tuple)) else [eos_token_id]) - {None}
    for position, token in enumerate(ids):
        if token in eos_ids:
            return position + 1
    return len(ids)


__all__ = ["VideoChatLMMsEval", "lmms_eval_manifest"]
