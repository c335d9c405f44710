# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Original OpenGVLab checkpoints -> converted, Hub-ready folders (`videochat convert`): one record per released
model (`presets`), one key map per original layout (`key_maps`), the one source detector (`sources`), safe lazy
readers (`checkpoint_io`) and the streaming atomic writer (`converter`, `writer`)."""
