# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Unmodified lmms-eval 0.7.3 runs our `videochat` model (entry point `lmms_eval.models`) on a tiny local video task
(generated clips, local JSONL): batch sizes 1, 2 and 4 give the same answers as our own `generate()` run one
conversation at a time in a separate process, with and without an MVBench-style system message, which must reach the
Q-Former. Runs in the lmms-eval venv: `make test-serving` (marker `serving`).

lmms-eval exits 0 when the evaluation raises, so the runs are checked through their samples files."""

import glob
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from serving_testing import build_checkpoints, run_reference, write_clip


pytestmark = pytest.mark.serving
pytest.importorskip("lmms_eval", reason="the lmms-eval tests run in the lmms-eval venv (make test-serving)")

TASKS = ("tiny_video_qa", "tiny_video_qa_sys")
SYSTEM_PROMPT = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the detail and movement of "
    "objects, and the action and pose of persons. Based on your observations, select the best option."
)
POST_PROMPT = " Answer left or right."
MAX_NEW_TOKENS = 8


def write_task(folder: Path, data_file: Path) -> None:
    import yaml

    folder.mkdir()
    (folder / "utils.py").write_text(
        textwrap.dedent(
            """
            def doc_to_visual(doc, lmms_eval_specific_kwargs=None):
                return [doc["video"]]

            def doc_to_text(doc, lmms_eval_specific_kwargs=None):
                return doc["question"] + (lmms_eval_specific_kwargs or {}).get("post_prompt", "")

            def doc_to_messages(doc, lmms_eval_specific_kwargs=None):
                kwargs = lmms_eval_specific_kwargs or {}
                messages = []
                if kwargs.get("system_prompt"):
                    messages.append({"role": "system", "content": [{"type": "text", "text": kwargs["system_prompt"]}]})
                question = {"type": "text", "text": doc_to_text(doc, kwargs)}
                messages.append({"role": "user", "content": [{"type": "video", "url": doc["video"]}, question]})
                return messages
            """
        )
    )
    template = {
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_target": "answer",
        "generation_kwargs": {
            "max_new_tokens": MAX_NEW_TOKENS,
            "temperature": 0,
            "do_sample": False,
            "until": ["\n\n"],
        },
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    }
    functions = "".join(
        f"{key}: !function utils.{key}\n" for key in ("doc_to_visual", "doc_to_text", "doc_to_messages")
    )
    for task in TASKS:
        kwargs = {"post_prompt": POST_PROMPT, **({"system_prompt": SYSTEM_PROMPT} if task.endswith("_sys") else {})}
        config = {**template, "task": task, "lmms_eval_specific_kwargs": {"default": kwargs}}
        (folder / f"{task}.yaml").write_text(yaml.safe_dump(config, sort_keys=False) + functions)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmms_eval")
    checkpoints = build_checkpoints(root / "models", real_vocabulary=False, sharpen_factor=6.0)
    rows = []
    for name, color in (("red", (220, 30, 30)), ("green", (30, 200, 60)), ("blue", (40, 60, 230))):
        for direction, word in ((1, "right"), (-1, "left")):
            path = write_clip(root / f"{name}_{word}.mp4", color, direction, num_frames=24, size=(160, 96))
            rows.append({"video": str(path), "question": f"Which way does the {name} square move?", "answer": word})
    data_file = root / "test.jsonl"
    data_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    write_task(root / "tasks", data_file)
    return root, checkpoints["hd"], rows


def reference(root: Path, model_dir: str, rows: list, system_to_qformer: bool = True) -> dict:
    """Our generate() per conversation, in a separate process, cut at `until` and stripped as lmms-eval does."""
    requests = []
    for task in TASKS:
        for row in rows:
            request = {"videos": [row["video"]], "text": row["question"] + POST_PROMPT}
            if task.endswith("_sys"):
                request.update(system=SYSTEM_PROMPT, drop_qformer_instruction=not system_to_qformer)
            requests.append(request)
    workdir = root / f"reference_{system_to_qformer}"
    workdir.mkdir(exist_ok=True)
    answers = run_reference(model_dir, requests, MAX_NEW_TOKENS, workdir, stop_at_eos=True)
    texts = [answer["text"].split("\n\n")[0].strip() for answer in answers]
    return {task: texts[index * len(rows) : (index + 1) * len(rows)] for index, task in enumerate(TASKS)}


def run_lmms_eval(root: Path, model_dir: str, batch_size: int) -> dict:
    output = root / f"out_bs{batch_size}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(root / "hf_home")}
    env["WANDB_MODE"] = "disabled"
    command = [
        sys.executable, "-m", "lmms_eval", "--model", "videochat",
        "--model_args", f"pretrained={model_dir},device=cpu,dtype=float32",
        "--tasks", ",".join(TASKS), "--include_path", str(root / "tasks"), "--batch_size", str(batch_size),
        "--output_path", str(output), "--log_samples",
    ]  # fmt: skip
    # cwd outside the source tree: a stale `*.egg-info` there would shadow the installed entry points
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=root)
    log = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, log
    answers = {}
    for task in TASKS:
        samples = glob.glob(f"{output}/**/*_samples_{task}.jsonl", recursive=True)
        assert len(samples) == 1, f"no samples of {task} (lmms-eval exits 0 on errors):\n{log}"
        records = sorted((json.loads(line) for line in open(samples[0])), key=lambda record: record["doc_id"])
        answers[task] = [
            r["filtered_resps"] if isinstance(r["filtered_resps"], str) else r["filtered_resps"][0] for r in records
        ]
    return answers


def test_entry_point_registers_the_model():
    from lmms_eval.models import get_model

    from videochat.cli.lmms_eval_model import VideoChatLMMsEval

    assert get_model("videochat") is VideoChatLMMsEval


def test_batch_sizes_give_the_answers_of_generate(workspace):
    root, model_dir, rows = workspace
    expected = reference(root, model_dir, rows)
    print("\nreference answers:", json.dumps(expected))
    # the Q-Former sees the system message: without it, the answers change
    assert (
        expected["tiny_video_qa_sys"] != reference(root, model_dir, rows, system_to_qformer=False)["tiny_video_qa_sys"]
    )
    for task in TASKS:
        assert len(set(expected[task])) > 1  # answers depend on the video
    for batch_size in (1, 2, 4):
        answers = run_lmms_eval(root, model_dir, batch_size)
        print(f"batch size {batch_size}:", json.dumps(answers))
        assert answers == expected, f"batch size {batch_size}"
