"""dearsim: a discrete-event simulator of communication scheduling for data-parallel training.

Quick use::

    import dearsim
    r = dearsim.simulate("traces/vgg16-b32.csvy", "10GbE", workers=16, scheduler="dear")
    print(r.iteration_time_s, r.exposed_comm_s)
"""

from __future__ import annotations

from .api import Comparison, compare, simulate
from .cluster import Cluster
from .errors import DearsimError
from .network import AlphaBeta, Fitted, NetworkModel, load_network, preset_names
from .result import Result
from .trace import Trace, load_trace, save_trace

__version__ = "0.1.0"

__all__ = [
    "AlphaBeta",
    "Cluster",
    "Comparison",
    "DearsimError",
    "Fitted",
    "NetworkModel",
    "Result",
    "Trace",
    "__version__",
    "compare",
    "load_network",
    "load_trace",
    "preset_names",
    "save_trace",
    "simulate",
]
