"""Tools apart from the window: the GUI benchmarks (python -m gui.tools.bench_*) and the screenshot tool behind qmask --screenshot."""
