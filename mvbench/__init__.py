"""mvbench: build, evaluate and train on MedVidBench, the medical video understanding benchmark."""

__version__ = "0.1.0"
