"""Where the engine runs: devices, cancellation between model blocks, atomic files, CPU
tuning and the CPU accelerator."""
