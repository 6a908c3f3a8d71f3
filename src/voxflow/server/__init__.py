"""voxflow.server"""
