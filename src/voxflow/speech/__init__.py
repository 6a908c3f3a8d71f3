"""voxflow.speech"""
