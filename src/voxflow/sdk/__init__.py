"""voxflow.sdk"""
