"""The machine a benchmark ran on, recorded in every result file (shared by the scripts)."""

from __future__ import annotations

import datetime
import os
import platform


def machine_info() -> dict:
    """Python, platform, CPU count, torch threads, the load at the end and the date:
    enough to tell whether two result files can be compared."""
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_end": os.getloadavg(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
