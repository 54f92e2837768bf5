"""The backbone benchmark: each layer's rate beside the raw rate of the layer below.

Run with `python -m bench` (see `--help`). It prints figures and never asserts on time."""
