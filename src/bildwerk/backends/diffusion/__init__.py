"""Pieces of the diffusers backend (``bildwerk.backends.diffusers``), one idea per module.

``spec`` parses the planner's JSON, ``libs`` imports the heavy libraries lazily,
``pipelines`` loads and keeps pipelines warm, ``modes`` prepares canvases and masks and
composites results, ``controls`` makes ControlNet maps, ``repro`` records what was used.
Only ``spec`` and ``modes`` may be imported without torch installed.
"""
