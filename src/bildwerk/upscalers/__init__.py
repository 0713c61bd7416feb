"""Super-resolution networks bildwerk loads itself (ESRGAN/Real-ESRGAN RRDBNet and
Real-ESRGAN's compact net), with spandrel as the optional fallback for the rest.

Importing this package imports no torch; :mod:`.rrdb` and :mod:`.compact` do.
"""

from bildwerk.upscalers.detect import Architecture, detect
from bildwerk.upscalers.load import MODEL_SUFFIXES, Upscaler, recognises

__all__ = ["MODEL_SUFFIXES", "Architecture", "Upscaler", "detect", "recognises"]
