"""``dearsim collect``: measure what the simulator needs on real hardware, then check it.

* :mod:`.layers` times a model's training step per layer (forward hooks, gradient-ready
  hooks) and writes a measured dearsim trace;
* :mod:`.comm` times collectives (all-reduce, reduce-scatter, all-gather) under ``torchrun``
  and writes a CSV;
* :mod:`.calibrate` fits ``T = a + b n`` per collective and worker count to that CSV and
  writes a fitted network file (needs no PyTorch);
* :mod:`.interference` measures how much compute slows down while collectives run and the
  framework work a layer trace misses (DDP's bucket copies, the optimizer's overhead);
* :mod:`.validate` trains the model for real with DDP, a DeAR implementation
  (:mod:`.dear_impl`) and per-tensor all-reduces (WFBP), simulates the same runs and reports
  the prediction error.

Importing this package does not import PyTorch; the modules that need it import it
themselves. ``docs/collect.md`` and ``docs/validation.md`` describe methods and results.
"""

from __future__ import annotations

INSTALL_HINT = "pip install 'dearsim[collect]'"
