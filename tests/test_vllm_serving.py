# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""vLLM (vllm-cpu 0.32.0, through our `vllm.general_plugins` entry point) serves converted folders with the same
prompt ids and greedy ids as our `generate()` run in a separate process: offline `LLM.generate` on the HD and non-HD
checkpoints (video, HD video, image, image + video, two videos, a system message and per-request `qformer_text` for
the Q-Former) and the OpenAI-compatible server on 127.0.0.1 (`video_url` / `image_url` to local files, decoded by the
plugin's loader). Runs in the vLLM venv: `make test-serving` (marker `serving`)."""

import json
import os

import pytest
from serving_testing import build_checkpoints, run_reference, run_vllm_offline, vllm_server_answers


pytestmark = pytest.mark.serving
pytest.importorskip("vllm", reason="the vLLM tests run in the vLLM venv (make test-serving)")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache: the default 92% of RAM fails on a shared box

MAX_NEW_TOKENS = 12
SYSTEM = "Carefully watch the video and pay attention to the cause of events."


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return build_checkpoints(tmp_path_factory.mktemp("serving"))


def requests_of(paths: dict, kinds: list[str]) -> list[dict]:
    question = {"text": "What happens in the video?"}
    catalogue = {
        "video": {"videos": [paths["red_right"]], **question},
        "other_video": {"videos": [paths["green_left"]], **question},
        "system_message": {"system": SYSTEM, "videos": [paths["red_right"]], **question},
        "qformer_text": {"videos": [paths["red_right"]], "qformer_text": "Focus on the square.", **question},
        "other_qformer_text": {"videos": [paths["green_left"]], "qformer_text": "Where does it go?", **question},
        "image": {"images": [paths["image"]], "text": "What is in the picture?"},
        "image_and_video": {"images": [paths["image"]], "videos": [paths["green_left"]], "text": "Compare them."},
        "two_videos": {"videos": [paths["red_right"], paths["green_left"]], "text": "What differs?"},
    }
    return [{"kind": kind, **catalogue[kind]} for kind in kinds]


def compare(label: str, requests: list[dict], ours: list[dict], served: list[dict]) -> None:
    rows = []
    for request, expected, actual in zip(requests, ours, served):
        rows.append(
            {
                "kind": f"{label}/{request['kind']}",
                "prompt_ids_ours": len(expected["prompt_ids"]),
                "prompt_ids_served": len(actual["prompt_ids"]),
                "prompt_ids_equal": expected["prompt_ids"] == actual["prompt_ids"],
                "greedy_ids_equal": expected["ids"] == actual["ids"],
            }
        )
    print("\n" + "\n".join(json.dumps(row) for row in rows))
    assert len(served) == len(requests)
    for request, expected, actual in zip(requests, ours, served):
        assert actual["prompt_ids"] == expected["prompt_ids"], request["kind"]
        assert actual["ids"] == expected["ids"], request["kind"]
    # the comparisons see the inputs: different videos, instructions and modalities give different answers
    answers = [tuple(answer["ids"]) for answer in ours]
    assert len(set(answers)) == len(answers)


def test_offline_generate_hd(checkpoints, tmp_path):
    kinds = ["video", "other_video", "system_message", "qformer_text", "other_qformer_text", "image"]
    kinds += ["image_and_video", "two_videos"]
    requests = requests_of(checkpoints, kinds)
    ours = run_reference(checkpoints["hd"], requests, MAX_NEW_TOKENS, tmp_path)
    served = run_vllm_offline(checkpoints["hd"], requests, MAX_NEW_TOKENS, tmp_path)
    compare("offline-hd", requests, ours, served)


def test_offline_generate_non_hd(checkpoints, tmp_path):
    requests = requests_of(checkpoints, ["video", "other_video", "system_message", "image", "image_and_video"])
    ours = run_reference(checkpoints["nonhd"], requests, MAX_NEW_TOKENS, tmp_path)
    served = run_vllm_offline(checkpoints["nonhd"], requests, MAX_NEW_TOKENS, tmp_path)
    compare("offline-nonhd", requests, ours, served)


def test_openai_server_hd(checkpoints, tmp_path):
    requests = requests_of(checkpoints, ["video", "system_message", "image", "image_and_video"])
    ours = run_reference(checkpoints["hd"], requests, MAX_NEW_TOKENS, tmp_path)
    media_root = os.path.dirname(checkpoints["red_right"])
    served = vllm_server_answers(checkpoints["hd"], requests, MAX_NEW_TOKENS, media_root, tmp_path / "server.log")
    compare("server-hd", requests, ours, served)
