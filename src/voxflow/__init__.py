"""voxflow: a self-hosted voice-assistant call engine speaking the sipgate AI Flow wire format.

Importing the package has no side effects; the pieces live in subpackages:
``voxflow.protocol`` (wire models), ``voxflow.sdk`` (assistant SDK), ``voxflow.media``
(G.711, DTMF), ``voxflow.sip`` / ``voxflow.rtp`` (sans-IO line protocols), ``voxflow.engine``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
