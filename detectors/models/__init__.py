"""Model access for the detectors: the sentence encoder and causal language models.

Models are loaded lazily, once per process, from local files only; nothing is fetched from a
hub at run time.
"""
