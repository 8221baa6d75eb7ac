"""Offline evaluation: reading datasets in the shared layout and scoring runs against them."""
