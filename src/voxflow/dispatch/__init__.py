"""voxflow.dispatch"""
