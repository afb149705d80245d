"""Peak resident memory of this process, for the benchmarks that run a pipeline in a fresh one."""

from __future__ import annotations

import resource


def peak_rss_mib() -> float:
    """This process's own peak resident set (``VmHWM``), MiB.

    Not ``getrusage``'s ``ru_maxrss``: a process started by spawn (fork + exec) inherits there the
    peak of the parent it was forked from, which is not its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc (macOS: bytes, not KiB; a rough figure)
