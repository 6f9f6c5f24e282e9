"""Free ports for the servers that tests and benchmarks start (Streamlit, Ray), on the loopback interface.

Tests import it as `tests.ports` (the repository's root is on pytest's path); benchmarks put the root on
`sys.path` first, as they do for `cnnlab`.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now.

    The port is released before it is returned, so another program may take it before the caller
    binds it; callers that cannot afford that (Ray's start) try again with a fresh port.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
