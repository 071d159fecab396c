"""Training: SFT and MedGRPO (not landed yet)."""
