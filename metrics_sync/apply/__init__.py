"""Carrying out a plan (fresh or saved and verified again) with bounded concurrency."""
