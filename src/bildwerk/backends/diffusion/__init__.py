"""Pieces of the diffusers backend (``bildwerk.backends.diffusers``), one idea per module.

``spec`` parses the planner's JSON, ``libs`` imports the heavy libraries lazily,
``pipelines`` loads and keeps checkpoints warm, ``adapters`` manages LoRAs and embeddings
on them, ``schedulers`` maps friendly names, ``modes`` prepares canvases and masks and
composites results, ``controls`` makes ControlNet maps, ``repro`` records what was used.
None of them imports torch at module import time.
"""
