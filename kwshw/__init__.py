"""kwshw: FPGA keyword-spotting accelerators with bit-exact dynamic low-bit quantization."""

__version__ = "0.1.0"
