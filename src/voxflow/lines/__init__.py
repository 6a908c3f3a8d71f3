"""voxflow.lines"""
