"""Demo data for the local run: the sample catalogue, a few organisations and trainees."""

from .seed import SAMPLE_CATALOG, DemoLogin, SeedReport, seed_demo

__all__ = ["SAMPLE_CATALOG", "DemoLogin", "SeedReport", "seed_demo"]
