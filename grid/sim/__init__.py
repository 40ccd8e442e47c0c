"""Closed-loop simulator: the real planning loop against simulated devices on a simulated clock."""
