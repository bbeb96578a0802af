"""Resident memory of this process from /proc (Linux), for the benchmarks.

``status_kib("VmHWM")`` after ``reset_peak`` gives the peak since the reset;
where the kernel does not allow the reset, the peak since the process started.
"""


def status_kib(field):
    """A ``/proc/self/status`` field in KiB (``"VmRSS"``, ``"VmHWM"``), or None."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reset_peak():
    """Reset VmHWM to the current RSS; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
