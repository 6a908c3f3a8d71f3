"""voxflow.engine"""
