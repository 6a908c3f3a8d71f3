"""Media: G.711 codecs, DTMF signal path, resampling, VAD, jitter handling (numpy/scipy only)."""
