"""The model layer: turning executed instructions into cycles, and checking it.

The pricing engine (:mod:`~keusim.model.costmodel`), microarchitecture profiles as
sourced data (:mod:`~keusim.model.profiles`), the host's core family
(:mod:`~keusim.model.hostcpu`), the native harness that measures the host
(:mod:`~keusim.model.harness`), and calibration and validation against it
(:mod:`~keusim.model.calibrate`, :mod:`~keusim.model.validate`).
"""
