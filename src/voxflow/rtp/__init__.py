"""voxflow.rtp"""

from voxflow.rtp.inband import InbandDetectorPool
from voxflow.rtp.leg import InboundFrame, LegMedia, LegSettings, LegStats, MediaLeg

__all__ = ["InbandDetectorPool", "InboundFrame", "LegMedia", "LegSettings", "LegStats", "MediaLeg"]
