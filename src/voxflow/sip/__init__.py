"""voxflow.sip"""
