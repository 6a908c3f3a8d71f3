"""voxflow.rtp"""
