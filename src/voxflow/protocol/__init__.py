"""voxflow.protocol"""
