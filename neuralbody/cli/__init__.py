"""neuralbody.cli"""
