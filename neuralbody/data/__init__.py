"""neuralbody.data"""
