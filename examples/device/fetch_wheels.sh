#!/usr/bin/env bash
# Here (with a package index), before a session on a lent GPU machine: the wheels dearsim
# needs there and the machine's image lacks (its python3 is 3.12 with PyTorch, numpy,
# pandas, matplotlib, pyyaml, rich, pyarrow; not simpy, pydantic or a recent typer).
#   bash examples/device/fetch_wheels.sh        # -> .whl/ (git-ignored through .git/info/exclude)
# Then every device call carries .whl and starts with examples/device/checks.sh's setup.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    simpy==4.1.2 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
    typing-inspection==0.4.5 typing-extensions==4.15.0 typer==0.29.3
ls -la .whl
