"""voxflow.testing"""
