# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Records `cv2.resize(image, (w, h))` (INTER_LINEAR, uint8) for `test_internvideo2_processing.py`.

Not run by the tests (they must not need OpenCV): run it with opencv-python-headless installed to regenerate
`cv2_resize_reference.json`. Images come from `reference_image` (pure integer arithmetic, identical everywhere);
only the SHA-256 of each cv2 output is stored.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np


def reference_image(height: int, width: int, seed: int) -> np.ndarray:
    """Deterministic uint8 RGB image mixing gradients, a checkerboard and a multiplicative hash."""
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    channels = [
        (x * (7 + seed) + y * (3 + 2 * seed)) % 256,
        ((x // (1 + seed % 5) + y // (1 + seed % 3)) % 2) * 255,
        ((x + 1) * (y + 3) * (2654435761 % (97 + seed))) % 256,
    ]
    return np.stack(channels, axis=-1).astype(np.uint8)


def cases() -> list[tuple[int, int, int, int, int]]:
    """(src_h, src_w, dst_h, dst_w, seed): random up/down sizes, the demo's square squash and the short-side resize."""
    rng = np.random.RandomState(1234)
    result = []
    for seed in range(240):
        height, width = int(rng.randint(1, 300)), int(rng.randint(1, 300))
        if seed % 3 == 0:
            dst_h, dst_w = 224, 224
        elif seed % 3 == 1:
            dst_h, dst_w = (int(224 * height / width), 224) if width < height else (224, int(224 * width / height))
        else:
            dst_h, dst_w = int(rng.randint(1, 300)), int(rng.randint(1, 300))
        result.append((height, width, dst_h, dst_w, seed))
    return result


def main() -> int:
    import cv2

    records = []
    for height, width, dst_h, dst_w, seed in cases():
        resized = cv2.resize(reference_image(height, width, seed), (dst_w, dst_h))
        records.append(
            {
                "src": [height, width],
                "dst": [dst_h, dst_w],
                "seed": seed,
                "sha256": hashlib.sha256(np.ascontiguousarray(resized).tobytes()).hexdigest(),
            }
        )
    output = Path(__file__).with_name("cv2_resize_reference.json")
    header = {"opencv": cv2.__version__, "optimized": cv2.useOptimized(), "numpy": np.__version__}
    lines = [json.dumps(header)[:-1] + ', "cases": [']
    lines += [json.dumps(record) + ("," if index < len(records) - 1 else "") for index, record in enumerate(records)]
    output.write_text("\n".join(lines) + "\n]}\n")
    print(f"wrote {len(records)} cases to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
