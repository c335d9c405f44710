# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Fixture checker: `python -m videochat.parity FIXTURE_DIR [--json]`.

Reads a folder in the format of `shared/fixtures` (original checkpoint + original config + tokenizers +
`inputs.safetensors` + `expected.safetensors` recorded by running the ORIGINAL code), converts the original
checkpoint with our conversion code, runs our model on the recorded inputs and prints, for every recorded tensor, the
max abs difference, plus whether the greedy tokens are identical. Exit code 1 when anything is off tolerance.

Tolerance. Every recorded tensor is compared in float32 with a max abs diff of 1e-5, except the logits of a chat
model, which are compared against the fixture's own float32 noise N:

    |ours in float64 - recorded| <= 1.5 N    (our arithmetic is the original's, up to the original's rounding)
    |ours in float32 - recorded| <= 3 N      (and our float32 run adds no more than float32 rounding)

The recorded logits carry the float32 rounding of two parts of the original computation, so N = m + p:

* m, the LLM's own rounding: how far a LoRA-merged float32 LLM run on the recorded `inputs_embeds` lands from the
  recorded logits. InternVideo2-Chat fixtures record it in `verify_report.json` ("<case>.logits(LoRA-merged ...)");
  for the other fixtures it is measured here the same way, as our float32 LLM against our float64 LLM on the
  recorded `inputs_embeds`.
* p, the rounding of the visual path carried into the logits: how far the float64 LLM's logits move between the
  recorded `inputs_embeds` (float32, within 1e-5 of ours, which is checked) and our float64 `inputs_embeds`. The
  LLM amplifies the ~2e-6 rounding of its input: on `tiny_hd` p is 1.5e-4 while m is 5.6e-5, which is why a
  rule based on m alone does not hold even for an exact (float64) evaluation of the same model.

Fixtures without a recorded LLM input (InternLM2 LLM-only folders, InternVideo2 encoders) keep 1e-5 on every tensor;
a chat case that records logits but not `inputs_embeds` uses N = m + (our float32 - float64 difference end to end).
The float64 model folds LoRA in float64; everything else (intermediates, greedy tokens) runs in float32.
"""

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import GenerationConfig

from ..convert.sources import detect_layout
from ..convert.verify import load_converted, max_abs_diff
from . import internvideo2, internvideo2_chat, videochat2
from .common import (
    ABS_TOLERANCE,
    FLOAT32_NOISE_FACTOR,
    FLOAT64_NOISE_FACTOR,
    FixtureBundle,
    FixtureCase,
    build_converted_model,
    read_original_config,
    recorded_merge_noise,
)
from .internlm2 import run_fixture as run_internlm2_fixture
from .preprocessing import preprocessing_checks


# original layout -> adapter turning a fixture folder into a `FixtureBundle`
FIXTURE_ADAPTERS = {
    "internvideo2_chat": internvideo2_chat.load_fixture,
    "videochat2": videochat2.load_fixture,
    "videochat_v1": videochat2.load_fixture,
}


def detect_family(fixture_dir: Path) -> str:
    """Kind of a fixture folder: an LLM-only InternLM2 folder, or the original layout of a chat-model folder."""
    llm_config = fixture_dir / "original" / "config.json"
    if llm_config.is_file() and "internlm2" in llm_config.read_text().lower():
        return "internlm2"
    original_config = read_original_config(fixture_dir)
    if internvideo2.fixture_stage(original_config) is not None:
        return "internvideo2"
    return detect_layout(original_config, ())


def load_fixture(fixture_dir: str | Path) -> FixtureBundle:
    fixture_dir = Path(fixture_dir)
    return FIXTURE_ADAPTERS[detect_family(fixture_dir)](fixture_dir)


def _capture_module_input(
    module: torch.nn.Module, store: dict, name: str, keyword: str | None = None
) -> Callable[[], None]:
    """Record the first input a module sees (positional, or the `keyword` argument) into `store[name]`."""

    def hook(module, args, kwargs):
        store.setdefault(name, kwargs.get(keyword) if keyword else args[0])

    return module.register_forward_pre_hook(hook, with_kwargs=True).remove


@torch.no_grad()
def visual_features(model, inputs: dict) -> dict[str, torch.Tensor]:
    """The recorded intermediates of the visual path: encoder output before and after its post layernorm, the
    Q-Former's queries and output, the projection."""
    modality = "video" if inputs.get("pixel_values_videos") is not None else "image"
    pixels = inputs.get("pixel_values_videos" if modality == "video" else "pixel_values")
    if pixels is None:
        return {}
    recorded: dict[str, torch.Tensor] = {}
    remove = _capture_module_input(model.model.vision_model.post_layernorm, recorded, "vision_encoder_out")
    try:
        encode = model.model.get_video_features if modality == "video" else model.model.get_image_features
        features = encode(
            pixels, inputs.get(f"{modality}_qformer_input_ids"), inputs.get(f"{modality}_qformer_attention_mask")
        )
    finally:
        remove()
    num_clips = features.pooler_output.shape[0]
    queries = torch.cat([model.model.query_tokens, model.model.extra_query_tokens], dim=1).expand(num_clips, -1, -1)
    return {
        **recorded,
        "vision_layernorm_out": features.last_hidden_state,
        "qformer_query_embeds": queries,
        "qformer_last_hidden_state": features.qformer_outputs.last_hidden_state,
        "projection_out": features.pooler_output,
    }


@torch.no_grad()
def compute_outputs(model, case: FixtureCase, num_new_tokens: int) -> dict[str, torch.Tensor]:
    """Our intermediates for one case: the visual path (see `visual_features`), the LLM's inputs_embeds, logits and
    greedy ids."""
    inputs = case.forward_inputs
    outputs = visual_features(model, inputs)
    remove = _capture_module_input(model.model.language_model, outputs, "inputs_embeds", keyword="inputs_embeds")
    try:
        forward = model(**inputs)
    finally:
        remove()
    outputs["logits"] = forward.logits
    if num_new_tokens:
        outputs["generated_ids"] = greedy_tokens(model, inputs, num_new_tokens)
    return outputs


@torch.no_grad()
def greedy_tokens(model, inputs: dict, num_new_tokens: int) -> torch.Tensor:
    """`num_new_tokens` greedy steps through `generate()`, not stopping at EOS (the fixtures record plain argmax
    steps, some past an EOS)."""
    # `eos_token_id=[]` (not None, which the model's generation config would override) disables EOS stopping; an
    # explicit all-ones mask stops generate from inferring one from a pad id that could equal the placeholder id 0
    pad_token_id = getattr(model.config.text_config, "pad_token_id", None)
    config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=num_new_tokens,
        min_new_tokens=0,
        eos_token_id=[],
        pad_token_id=0 if pad_token_id is None else pad_token_id,
    )
    inputs = dict(inputs)
    if inputs.get("attention_mask") is None:
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    generated = model.generate(**inputs, generation_config=config)
    return generated[:, inputs["input_ids"].shape[1] :]


def tolerance_for(name: str, reference: torch.Tensor) -> float:
    """Max abs diff allowed for a recorded tensor compared on its own (the logits of chat cases are checked against
    the fixture's float32 noise instead, see `LogitsCheck`)."""
    return ABS_TOLERANCE


@dataclass
class LogitsCheck:
    """The logits of one chat case against the fixture's float32 noise (see the module docstring).

    Attributes:
        float64: max |our float64 logits - recorded logits|.
        float32: max |our float32 logits - recorded logits|.
        merged: m, the LLM's float32 rounding (`merged_source`: "recorded" in `verify_report.json` or "measured").
        propagated: p, the visual path's float32 rounding as it reaches the logits.
    """

    float64: float
    float32: float
    merged: float
    merged_source: str
    propagated: float

    @property
    def noise(self) -> float:
        return self.merged + self.propagated

    @property
    def ok(self) -> bool:
        return self.float64 <= FLOAT64_NOISE_FACTOR * self.noise and self.float32 <= FLOAT32_NOISE_FACTOR * self.noise

    def describe(self) -> str:
        return (
            f"float64 {self.float64:.3g} (<= {FLOAT64_NOISE_FACTOR * self.noise:.3g}), float32 {self.float32:.3g} "
            f"(<= {FLOAT32_NOISE_FACTOR * self.noise:.3g}); noise {self.noise:.3g} = LLM {self.merged:.3g} "
            f"({self.merged_source}) + inputs {self.propagated:.3g}"
        )

    def as_dict(self) -> dict:
        return {
            "float64": self.float64,
            "float32": self.float32,
            "noise": self.noise,
            "merged": self.merged,
            "merged_source": self.merged_source,
            "propagated": self.propagated,
            "limit_float64": FLOAT64_NOISE_FACTOR * self.noise,
            "limit_float32": FLOAT32_NOISE_FACTOR * self.noise,
            "ok": self.ok,
        }


def _in_dtype(inputs: dict, dtype: torch.dtype) -> dict:
    return {
        key: value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() else value
        for key, value in inputs.items()
    }


@torch.no_grad()
def llm_logits(model, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The chat model's LLM alone (no visual path) on given `inputs_embeds`."""
    hidden = model.model.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
    return model.lm_head(hidden)


@torch.no_grad()
def check_logits(
    model32, model64, case: FixtureCase, ours32: torch.Tensor, merge_noise: dict[str, float]
) -> LogitsCheck:
    """`ours32` (our float32 logits of `case`) and our float64 model against the recorded logits and the fixture's
    float32 noise; `merge_noise` is the fixture's recorded m per case (`recorded_merge_noise`)."""
    reference = case.expected["logits"][1]
    ours64 = compute_outputs(model64, replace(case, forward_inputs=_in_dtype(case.forward_inputs, torch.float64)), 0)
    mask = case.forward_inputs.get("attention_mask")
    recorded_embeds = case.expected.get("inputs_embeds", (None, None))[1]
    if recorded_embeds is not None:
        exact_on_recorded = llm_logits(model64, recorded_embeds.to(torch.float64), mask)
        propagated = max_abs_diff(exact_on_recorded, ours64["logits"])
    else:
        propagated = max_abs_diff(ours32, ours64["logits"])
    if case.name in merge_noise:
        merged, source = merge_noise[case.name], "recorded"
    elif recorded_embeds is not None:
        merged = max_abs_diff(llm_logits(model32, recorded_embeds.to(torch.float32), mask), exact_on_recorded)
        source = "measured"
    else:
        merged, source = 0.0, "not recorded"
    return LogitsCheck(
        float64=max_abs_diff(ours64["logits"], reference),
        float32=max_abs_diff(ours32, reference),
        merged=merged,
        merged_source=source,
        propagated=propagated,
    )


def _record_check(name: str, value: float | bool, tensors: dict, failures: list) -> None:
    """Booleans (equal ids, strings, indices) are reported as 0.0 / 1.0, numbers as max abs diffs."""
    if isinstance(value, bool):
        tensors[name] = 0.0 if value else 1.0
        if not value:
            failures.append(f"{name}: mismatch")
    else:
        tensors[name] = float(value)
        if not value <= ABS_TOLERANCE:
            failures.append(f"{name}: max abs diff {value:.3g}")


def run_fixture(fixture_dir: str | Path) -> dict:
    """Check one fixture folder; returns the JSON-able report."""
    if detect_family(Path(fixture_dir)) == "internlm2":
        return _run_llm_fixture(Path(fixture_dir))
    if detect_family(Path(fixture_dir)) == "internvideo2":
        return internvideo2.run_fixture(fixture_dir)
    bundle = load_fixture(fixture_dir)
    model = bundle.model.eval()
    model64 = _float64_model(Path(fixture_dir))
    merge_noise = recorded_merge_noise(Path(fixture_dir))
    tensors: dict[str, float] = {}
    logits: dict[str, dict] = {}
    failures: list[str] = []
    greedy_equal = True
    for case in bundle.cases:
        num_new = int(case.generated_ids.numel()) if case.generated_ids is not None else 0
        ours = compute_outputs(model, case, num_new)
        for our_name, (fixture_name, reference) in case.expected.items():
            diff = max_abs_diff(ours[our_name], reference)
            tensors[fixture_name] = diff
            if our_name == "logits":
                check = check_logits(model, model64, case, ours["logits"], merge_noise)
                logits[fixture_name] = check.as_dict()
                if not check.ok:
                    failures.append(f"{fixture_name}: {check.describe()}")
            elif not diff <= tolerance_for(our_name, reference):
                failures.append(f"{fixture_name}: max abs diff {diff:.3g}")
        if case.generated_ids is not None:
            same = torch.equal(ours["generated_ids"].reshape(-1).cpu(), case.generated_ids.reshape(-1).cpu())
            tensors[f"{case.name}.generated_ids"] = 0.0 if same else 1.0
            if not same:
                greedy_equal = False
                failures.append(
                    f"{case.name}.generated_ids: ours {ours['generated_ids'].reshape(-1).tolist()} vs "
                    f"{case.generated_ids.reshape(-1).tolist()}"
                )
        for check_name, check in case.extra_checks.items():
            _record_check(check_name, check(), tensors, failures)
    for check_name, check in preprocessing_checks(Path(fixture_dir), bundle.family).items():
        _record_check(check_name, check(), tensors, failures)
    return {
        "fixture": str(fixture_dir),
        "family": bundle.family,
        "tensors": tensors,
        "logits": logits,
        "greedy_equal": greedy_equal,
        "ok": not failures,
        "failures": failures,
        "notes": bundle.notes,
    }


def _float64_model(fixture_dir: Path):
    """The fixture's checkpoint converted (LoRA folded) and run in float64."""
    return build_converted_model(fixture_dir, dtype=torch.float64)[0]


def verify_converted_folder(folder: str | Path, fixture_dir: str | Path) -> dict:
    """A folder written by `videochat convert` from a fixture's original checkpoint, loaded through the Auto class,
    on the fixture's recorded inputs against the recorded original outputs."""
    bundle = load_fixture(fixture_dir)
    model = load_converted(Path(folder))
    model64 = _float64_model(Path(fixture_dir))
    merge_noise = recorded_merge_noise(Path(fixture_dir))
    diffs, failures = {}, []
    for fixture_case in bundle.cases:
        num_new = int(fixture_case.generated_ids.numel()) if fixture_case.generated_ids is not None else 0
        case = replace(
            fixture_case,
            forward_inputs=_with_placeholder_ids(fixture_case.forward_inputs, bundle.model.config, model.config),
        )
        ours = compute_outputs(model, case, num_new)
        for our_name, (fixture_name, reference) in case.expected.items():
            diffs[fixture_name] = diff = max_abs_diff(ours[our_name], reference)
            if our_name == "logits":
                check = check_logits(bundle.model, model64, fixture_case, ours["logits"], merge_noise)
                if not check.ok:
                    failures.append(f"{fixture_name}: {check.describe()}")
            elif not diff <= tolerance_for(our_name, reference):
                failures.append(f"{fixture_name}: max abs diff {diff:.3g}")
        if case.generated_ids is not None:
            same = torch.equal(ours["generated_ids"].reshape(-1), case.generated_ids.reshape(-1))
            diffs[f"{case.name}.generated_ids"] = 0.0 if same else 1.0
            if not same:
                failures.append(f"{case.name}.generated_ids differ")
    return {
        "kind": "fixture",
        "reference": str(fixture_dir),
        "max_abs_diff": diffs,
        "failures": failures,
        "ok": not failures,
    }


def _with_placeholder_ids(inputs: dict, source_config, target_config) -> dict:
    """The case's `input_ids` with the placeholder ids of `source_config` rewritten to those of `target_config` (a
    converted folder uses the ids of its tokenizer's `<video>` / `<image>` tokens)."""
    input_ids = inputs["input_ids"].clone()
    for modality, pixels in (("video", "pixel_values_videos"), ("image", "pixel_values")):
        if inputs.get(pixels) is not None:
            name = f"{modality}_token_id"
            input_ids[inputs["input_ids"] == getattr(source_config, name)] = getattr(target_config, name)
    return {**inputs, "input_ids": input_ids}


def _run_llm_fixture(fixture_dir: Path) -> dict:
    """InternLM2 folders hold only an LLM (written as an in-tree Llama by our conversion)."""
    tensors, failures, greedy_equal = run_internlm2_fixture(fixture_dir, tolerance_for)
    return {
        "fixture": str(fixture_dir),
        "family": "internlm2",
        "tensors": tensors,
        "logits": {},
        "greedy_equal": greedy_equal,
        "ok": not failures,
        "failures": failures,
        "notes": [],
    }


def _print_report(report: dict) -> None:
    print(f"fixture: {report['fixture']} ({report['family']})")
    for name, diff in report["tensors"].items():
        check = report.get("logits", {}).get(name)
        if check is None:
            print(f"  {name:<48} max_abs_diff={diff:.3e}")
        else:
            print(
                f"  {name:<48} float64={check['float64']:.3e} (<= {check['limit_float64']:.3e}) "
                f"float32={check['float32']:.3e} (<= {check['limit_float32']:.3e}) noise={check['noise']:.3e} "
                f"[LLM {check['merged']:.2e} {check['merged_source']} + inputs {check['propagated']:.2e}]"
            )
    print(f"  greedy tokens identical: {report['greedy_equal']}")
    for failure in report["failures"]:
        print(f"  FAIL {failure}")
    print("OK" if report["ok"] else "FAILED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videochat.parity", description=__doc__.split("\n\n")[0])
    parser.add_argument("fixture_dirs", nargs="+", help="fixture folder(s) in the shared/fixtures format")
    parser.add_argument("--json", action="store_true", help="print one JSON object per fixture")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    all_ok = True
    for fixture_dir in args.fixture_dirs:
        try:
            report = run_fixture(fixture_dir)
        except (FileNotFoundError, ValueError, KeyError) as error:
            report = {
                "fixture": str(fixture_dir),
                "family": None,
                "tensors": {},
                "logits": {},
                "greedy_equal": False,
                "ok": False,
                "failures": [f"{type(error).__name__}: {error}"],
                "notes": [],
            }
        all_ok &= report["ok"]
        if args.json:
            keys = ("fixture", "tensors", "logits", "greedy_equal", "ok", "failures")
            print(json.dumps({key: report[key] for key in keys if key in report}))
        else:
            _print_report(report)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
