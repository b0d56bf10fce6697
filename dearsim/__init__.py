"""dearsim: a discrete-event simulator of communication scheduling for data-parallel training.

Quick use::

    import dearsim
    r = dearsim.simulate("traces/vgg16-b32.csvy", "10GbE", workers=16, scheduler="dear")
    print(r.iteration_time_s, r.exposed_comm_s)
"""

from __future__ import annotations

from .api import Comparison, compare, simulate
from .cluster import Cluster, Jitter, Stall
from .errors import DearsimError, ParamError
from .network import (
    AlphaBeta,
    Fitted,
    Hierarchical,
    NetworkModel,
    load_network,
    load_topology,
    network_from_spec,
    preset_names,
)
from .plugins import PluginError, load_plugin
from .result import Result
from .trace import Trace, load_trace, save_trace

__version__ = "0.1.0"

__all__ = [
    "AlphaBeta",
    "Cluster",
    "Hierarchical",
    "Jitter",
    "Stall",
    "Comparison",
    "DearsimError",
    "Fitted",
    "NetworkModel",
    "ParamError",
    "PluginError",
    "Result",
    "Trace",
    "__version__",
    "compare",
    "load_network",
    "load_topology",
    "load_plugin",
    "load_trace",
    "network_from_spec",
    "preset_names",
    "save_trace",
    "simulate",
]
