"""neuralbody.synth"""
