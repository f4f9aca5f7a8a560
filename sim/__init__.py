"""Verification of the generated accelerator: cocotb testbenches, drivers and the scoreboard.

Host side (importable anywhere, no cocotb, no torch):

- :mod:`sim.network` -- :func:`~sim.network.run_network_sim` (the ``kwshw sim`` command):
  generate, simulate (Icarus/Verilator, RTL or gate level) and check a model against the
  golden model; :func:`~sim.network.run_scenario` for streams with resets/clears;
- :mod:`sim.scoreboard` -- every output against :mod:`kwshw.golden`, first mismatch located;
- :mod:`sim.stimulus` -- real LFBE frames from ``$KWSHW_DATA``, calibrated random models,
  adversarial frames;
- :mod:`sim.gatelevel` -- Yosys synthesis to netlists and their cell models;
- :mod:`sim.toolchain` -- simulator set-up, Amaranth conversion, the cocotb runner;
- :mod:`sim.units` -- building blocks driven by per-cycle schedules.

Simulator side (imported by cocotb inside the simulator): :mod:`sim.streams` (valid/ready
drivers, monitors), :mod:`sim.tb_network`, :mod:`sim.tb_units`, :mod:`sim.tb_fixtures`.

``docs/verification.md`` says what is verified where and how to read a failure.
"""


def run_network_sim(*args, **kwargs):
    """See :func:`sim.network.run_network_sim` (imported lazily)."""
    from .network import run_network_sim as _run

    return _run(*args, **kwargs)
