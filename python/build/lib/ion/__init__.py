"""IoN (Internet of Neuro-electronics) from Python: your own code as a lab in a spiking network.

    import ion
    with ion.Node("my-lab", broker="tcp://127.0.0.1:5555", channels=4, ports=4) as node:
        node.emit([0, 1, 2])                     # three spikes, stamped now (network time)
        d = node.receive(timeout_s=1.0)          # handed over at their deadlines
        print(d.ports, d.times_ns, node.stats())

Pure Python over libion.so (ctypes): the node's C++ machinery does the work.
"""
from ._lib import LibraryNotFound
from .node import (ClosedError, Delivery, EmitResult, EventKind, IonError, Node, NotReadyError,
                   RefusedError, RegistrationTimeout, SecurityError)
from .recording import read_recording, to_neo

__all__ = ["Node", "Delivery", "EventKind", "EmitResult", "IonError", "RefusedError",
           "NotReadyError", "ClosedError", "RegistrationTimeout", "SecurityError", "LibraryNotFound",
           "read_recording", "to_neo", "library_version"]


def library_version() -> str:
    """The version of the libion.so in use."""
    from ._lib import lib
    return lib().ion_version().decode()
