"""edgekd: compile a PyTorch teacher into a student that meets a latency budget on an edge target."""

__version__ = "0.1.0"
