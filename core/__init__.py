"""What every layer shares and nothing above it owns: the error shape and the database.

``core`` imports no other unionhub package; every other package may import it.
"""
