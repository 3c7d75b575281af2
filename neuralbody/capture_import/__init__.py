"""Bring your own capture: calibrations, videos and image folders into ZJU-MoCap layout."""
