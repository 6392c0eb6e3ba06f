"""Measuring Quell at scale: a load generator and the hand-written SQL the benchmark compares against."""
